"""CSRF, decided in one place: every state-changing request carries this session's token.

One before-request hook checks every POST, PUT, PATCH and DELETE against the session-bound
token (WTForms' SessionCSRF, as the forms render it), before any view runs. A route is
left out only when it says why with `csrf_exempt(reason)` (the Authy webhook is signed by
the push service and has no browser session). A policy test walks the URL map and fails
on a state-changing route that is neither checked here nor exempt with a reason, so a new
form cannot forget the check the way nine hand-written copies could.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from quart import Quart, abort, current_app, g, request

from push2fa.web.forms import CSRF_ERROR, CSRFOnlyForm
from push2fa.web.policy import policy_of

log = logging.getLogger("push2fa.csrf")

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXEMPT_ATTR = "push2fa_csrf_exempt"

V = TypeVar("V", bound=Callable[..., Any])


def csrf_exempt(reason: str) -> Callable[[V], V]:
    """Leave a route out of the CSRF check; `reason` says what protects it instead."""
    if not reason.strip():
        raise ValueError("a CSRF exemption needs a reason")

    def mark(view: V) -> V:
        setattr(view, EXEMPT_ATTR, reason)
        return view

    return mark


def exemption_of(view: Callable[..., Any]) -> str | None:
    reason = getattr(view, EXEMPT_ATTR, None)
    return reason if isinstance(reason, str) and reason.strip() else None


async def check_request() -> None:
    """Refuse a state-changing request without this session's token (400, nothing done)."""
    if request.method not in STATE_CHANGING or request.url_rule is None:
        return  # reads change nothing; an unrouted request gets its 404/405 from routing
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or exemption_of(view) is not None:
        return
    if policy_of(view) == "login" and g.get("user") is None:
        return  # login_required sends the visitor to the login page, changing nothing
    form = await CSRFOnlyForm.from_request()
    if form.validate():
        return
    log.info("CSRF check failed on %s %s", request.method, request.url_rule.rule)
    abort(400, CSRF_ERROR)


def init_app(app: Quart) -> None:
    """Register the check; after the hook that loads the user (see `check_request`)."""
    app.before_request(check_request)
