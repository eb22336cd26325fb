"""Who is logged in: the session each request and page belongs to.

Every request's login cookie is checked against its server-side session record
(`domain.sessions`): an ended, idle or expired session, or a cookie paired with another
session's signed Quart session, is logged out on the spot.
"""

from __future__ import annotations

from quart import Quart, g, redirect, request, session, url_for
from quart_auth import current_user, logout_user
from werkzeug.wrappers import Response as WerkzeugResponse

from push2fa import services
from push2fa.domain import sessions
from push2fa.models import User


async def _load_user() -> None:
    g.user = None
    g.login = None
    token = current_user.auth_id
    if token is None:
        return
    svc = services.current()
    async with svc.db.session() as db:
        live = await sessions.resolve(db, svc.settings, token, session.get(sessions.BOUND_KEY))
        if live is None:
            logout_user()
            return
        await sessions.touch(db, live)
    g.user = live.user
    g.login = live.record


# Pages a user who must change the password can still reach.
OPEN_WHILE_PASSWORD_MUST_CHANGE = {
    "account.change_password",
    "account.confirm",
    "auth.logout",
    "static",
    "account.report",
    "twofa.wait",
    "twofa.complete",
    "twofa.with_recovery_code",
    "twofa.with_app_code",
    "twofa.cancel",
    "twofa.resend",
}


async def _require_password_change() -> WerkzeugResponse | None:
    user = g.get("user")
    if user is None or not user.must_change_password:
        return None
    if request.endpoint in OPEN_WHILE_PASSWORD_MUST_CHANGE or request.endpoint is None:
        return None
    if request.endpoint.startswith(("ops.", "webhooks.")):
        return None
    return redirect(url_for("account.change_password"))


def init_app(app: Quart) -> None:
    app.before_request(_load_user)
    app.before_request(_require_password_change)

    @app.context_processor
    async def _user_in_templates() -> dict[str, object]:
        return {"user": g.get("user")}


def landing_page(user: User, next_path: str) -> str:
    """Where a fresh login goes: the requested page, unless the password must change first."""
    if user.must_change_password:
        return url_for("account.change_password")
    return next_path
