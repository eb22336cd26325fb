"""Every route states its access policy; a test walks the URL map and fails on any that doesn't.

`public` and `login_required` only record the decision (and enforce the latter). Keeping
the decision visible on each view makes a forgotten check a failing test, not a hole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from quart import g, redirect, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

P = ParamSpec("P")
R = TypeVar("R")

POLICY_ATTR = "push2fa_policy"


def public(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    setattr(view, POLICY_ATTR, "public")
    return view


def login_required(view: Callable[P, Awaitable[Any]]) -> Callable[P, Awaitable[Any]]:
    """Send anonymous visitors to the login page, coming back here afterwards."""

    @wraps(view)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
        if g.get("user") is None:
            return login_redirect()
        return await view(*args, **kwargs)

    setattr(wrapper, POLICY_ATTR, "login")
    return wrapper


def login_redirect() -> WerkzeugResponse:
    """To the login page, and back here afterwards, unless "here" was a form submission
    (after logging in, the browser would GET a POST-only URL)."""
    if request.method not in {"GET", "HEAD"}:
        return redirect(url_for("auth.login"))
    target = request.full_path if request.query_string else request.path
    return redirect(url_for("auth.login", next=target))


def policy_of(view: Callable[..., Any]) -> str | None:
    return getattr(view, POLICY_ATTR, None)
