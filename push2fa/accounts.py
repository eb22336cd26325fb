"""Who is logged in: loading the user for each request, logging in and out.

The quart-auth cookie carries `<user id>:<session epoch>`. Bumping a user's epoch ends all
of that user's sessions at once (password change, "this wasn't me"), which stateless
cookies could not otherwise do. Logging in also starts a fresh session (no fixation).
"""

from __future__ import annotations

from datetime import timedelta

from quart import Quart, g, session
from quart_auth import AuthUser, current_user, login_user, logout_user
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa import services
from push2fa.models import User, utcnow

LAST_SEEN_RESOLUTION = timedelta(minutes=1)


def auth_id_for(user: User) -> str:
    return f"{user.id}:{user.session_epoch}"


def parse_auth_id(auth_id: str | None) -> tuple[int, int] | None:
    if not auth_id:
        return None
    user_id, _, epoch = auth_id.partition(":")
    if not (user_id.isdigit() and epoch.isdigit()):
        return None
    return int(user_id), int(epoch)


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
    key = login.strip().lower()
    column = User.email if "@" in key else User.username
    return (await db.execute(select(User).where(func.lower(column) == key))).scalar_one_or_none()


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


def end_session() -> None:
    session.clear()
    logout_user()
    g.user = None


def init_app(app: Quart) -> None:
    app.before_request(_load_user)

    @app.context_processor
    async def _user_in_templates() -> dict[str, object]:
        return {"user": g.get("user")}
