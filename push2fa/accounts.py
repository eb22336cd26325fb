"""Who is logged in: loading the user for each request, logging in and out.

The quart-auth cookie carries `<user id>:<session epoch>`. Bumping a user's epoch ends all
of that user's sessions at once (password change, "this wasn't me"), which stateless
cookies could not otherwise do. Logging in also starts a fresh session (no fixation).
"""

from __future__ import annotations

from datetime import timedelta

from itsdangerous import BadData, URLSafeTimedSerializer
from quart import Quart, current_app, g, redirect, request, session, url_for
from quart_auth import AuthUser, current_user, login_user, logout_user
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.wrappers import Response as WerkzeugResponse

from push2fa import audit, mail, services
from push2fa.domain.inputs import parse_id
from push2fa.models import AuditEvent, User, utcnow
from push2fa.useragent import describe

LAST_SEEN_RESOLUTION = timedelta(minutes=1)
FRESH_FOR = timedelta(minutes=10)  # how long a second factor counts as just given


def auth_id_for(user: User) -> str:
    return f"{user.id}:{user.session_epoch}"


def parse_auth_id(auth_id: str | None) -> tuple[int, int] | None:
    if not auth_id:
        return None
    raw_user, _, raw_epoch = auth_id.partition(":")
    user_id = parse_id(raw_user)
    if user_id is None or not (raw_epoch.isascii() and raw_epoch.isdigit()):
        return None
    if len(raw_epoch) > 19:
        return None
    return user_id, int(raw_epoch)


async def user_for_auth_id(db: AsyncSession, auth_id: str | None) -> User | None:
    """The user an auth cookie names, if that session has not been ended since."""
    parsed = parse_auth_id(auth_id)
    if parsed is None:
        return None
    user = await db.get(User, parsed[0])
    if user is None or user.session_epoch != parsed[1]:
        return None
    return user


async def find_by_login(db: AsyncSession, login: str) -> User | None:
    """Look a user up by username or e-mail, case-insensitively."""
    key = login.strip()
    column = User.email if "@" in key else User.username
    # lower() on both sides: SQLite's lower() folds ASCII only, unlike Python's str.lower().
    return (
        await db.execute(select(User).where(func.lower(column) == func.lower(key)))
    ).scalar_one_or_none()


async def _load_user() -> None:
    g.user = None
    auth_id = current_user.auth_id
    if auth_id is None:
        return
    async with services.current().db.session() as db:
        user = await user_for_auth_id(db, auth_id)
        if user is None:
            logout_user()
            return
        now = utcnow()
        if now - user.last_seen > LAST_SEEN_RESOLUTION:
            await db.execute(update(User).where(User.id == user.id).values(last_seen=now))
            await db.commit()
            user.last_seen = now
    g.user = user


def start_session(user: User, remember: bool) -> None:
    """Log `user` in on a brand-new session: nothing from before the login survives."""
    session.clear()
    session.permanent = remember
    login_user(AuthUser(auth_id_for(user)), remember=remember)
    g.user = user


def rotate_session() -> None:
    """A new session for the same login, after a privilege change (2FA turned off)."""
    user = g.get("user")
    if user is not None:
        start_session(user, remember=bool(session.permanent))


def end_session() -> None:
    session.clear()
    logout_user()
    g.user = None


# Pages a user who must change the password can still reach.
OPEN_WHILE_PASSWORD_MUST_CHANGE = {
    "account.change_password",
    "auth.logout",
    "static",
    "account.report",
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


async def after_login(db: AsyncSession, user: User) -> None:
    """Tell the user by e-mail about a login from a browser and address not seen before,
    with a link to report it. Runs after the login's audit row is written."""
    ip, agent = audit.request_context()
    seen = (
        await db.execute(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.user_id == user.id,
                AuditEvent.event == "login.succeeded",
                AuditEvent.ip == ip,
                AuditEvent.user_agent == agent,
            )
        )
    ).scalar_one()
    if seen > 1:
        return
    settings = services.settings()
    link = settings.public_url + url_for(
        "account.report", token=report_token(settings.secret_key, user.id)
    )
    body = (
        f"Hello {user.username},\n\nYour account was just logged in to from a new browser:\n\n"
        f"  Browser: {describe(agent)}\n  IP address: {ip or 'unknown'}\n"
        f"  Time: {utcnow():%Y-%m-%d %H:%M UTC}\n\n"
        f"If this was you, there is nothing to do. If it was not you, report it here; this "
        f"ends every session, pauses push requests and asks for a new password:\n\n{link}\n"
    )
    current_app.add_background_task(
        mail.send_mail, settings, user.email, "New login to your push2fa account", body
    )


REPORT_SALT = "push2fa report"
REPORT_MAX_AGE = 7 * 24 * 3600


def report_token(secret_key: str, user_id: int) -> str:
    return URLSafeTimedSerializer(secret_key, salt=REPORT_SALT).dumps({"u": user_id})


def read_report_token(secret_key: str, token: str) -> int | None:
    try:
        data = URLSafeTimedSerializer(secret_key, salt=REPORT_SALT).loads(
            token, max_age=REPORT_MAX_AGE
        )
        return parse_id(data["u"])
    except (BadData, KeyError, TypeError, ValueError):
        return None


def second_factor_is_fresh() -> bool:
    """A push, code or enrolment within the last few minutes: enough to change 2FA settings."""
    now = utcnow().timestamp()
    fresh_at = session.get("fresh_2fa_at", 0)
    if isinstance(fresh_at, int | float) and now - fresh_at < FRESH_FOR.total_seconds():
        return True
    enabled = g.user.push_enabled_at
    return enabled is not None and utcnow() - enabled < FRESH_FOR
