"""Login sessions as server-side records: logging in, checking, and ending them.

The login cookie carries only a random token; the database keeps its hash, and a session
ends when its row says so, wherever the cookie has been copied. The signed Quart session
is bound to the row too, so an attacker cannot pair a stolen login cookie with a session
cookie of their own (and its CSRF secret or second-factor freshness). Sessions without
"remember me" also end after an idle time and an absolute lifetime.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from quart import g, session
from quart_auth import AuthUser, login_user, logout_user
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.config import Settings
from push2fa.domain import audit, notices
from push2fa.models import User, UserSession, utcnow

BOUND_KEY = "login"  # the Quart session's key for the id of the record it belongs to
FRESH_KEY = "fresh_2fa_at"
FRESH_FOR = timedelta(minutes=10)  # how long a second factor counts as just given
TOUCH_EVERY = timedelta(minutes=1)  # last-active resolution: not a write per request
MAX_TOKEN_LENGTH = 128
SECOND_FACTORS = {"push", "recovery", "totp", "passkey"}


@dataclass(frozen=True)
class Live:
    """A session that may act: its record and its user."""

    record: UserSession
    user: User


def _digest(token: str) -> str:
    # 256 random bits: a plain hash is enough; a database leak yields no usable cookie.
    return hashlib.sha256(token.encode()).hexdigest()


def end_reason(settings: Settings, record: UserSession, now: datetime) -> str | None:
    """Why `record` is over by now ("expired", "idle"), or None while it may still act."""
    if record.ended_at is not None:
        return record.ended_reason or "ended"
    if record.remember:
        lifetime = timedelta(days=settings.remember_days)
    else:
        lifetime = timedelta(hours=settings.session_max_hours)
        if now - record.last_active_at >= timedelta(minutes=settings.session_idle_minutes):
            return "idle"
    if now - record.created_at >= lifetime:
        return "expired"
    return None


async def create(
    db: AsyncSession, user: User, *, remember: bool, ip: str, user_agent: str
) -> tuple[UserSession, str]:
    """A new session record for `user` (flushed, not committed) and its cookie token."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    record = UserSession(
        user_id=user.id,
        token_hash=_digest(token),
        created_at=now,
        last_active_at=now,
        ip=ip[:64],
        user_agent=user_agent[:512],
        remember=remember,
    )
    db.add(record)
    await db.flush()
    return record, token


async def resolve(
    db: AsyncSession, settings: Settings, token: str | None, bound_id: object
) -> Live | None:
    """The live session a login cookie names, if its Quart session belongs to it. A
    session found past its idle time or lifetime is ended on the spot. Commits then."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = (
        await db.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == _digest(token))
        )
    ).first()
    if row is None:
        return None
    record, user = row
    if record.ended_at is not None or bound_id != record.id:
        return None
    reason = end_reason(settings, record, utcnow())
    if reason is not None:
        await end(db, user.id, session_id=record.id, reason=reason)
        await db.commit()
        return None
    return Live(record, user)


async def touch(db: AsyncSession, live: Live) -> None:
    """Note activity, at most once a minute per session (one UPDATE, rarely)."""
    now = utcnow()
    oldest = min(live.record.last_active_at, live.user.last_seen)
    if now - oldest < TOUCH_EVERY:
        return
    await db.execute(
        update(UserSession).where(UserSession.id == live.record.id).values(last_active_at=now)
    )
    await db.execute(update(User).where(User.id == live.user.id).values(last_seen=now))
    await db.commit()
    live.record.last_active_at = now
    live.user.last_seen = now


async def end(
    db: AsyncSession,
    user_id: int,
    *,
    reason: str,
    session_id: int | None = None,
    except_id: int | None = None,
) -> int:
    """End the user's sessions: one (`session_id`), all but one (`except_id`), or all.
    Only ever the user's own: another account's session id matches nothing. The one way
    sessions end (logout, password change or reset, "this wasn't me", "log out
    everywhere"). Returns how many ended; the caller commits."""
    statement = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.ended_at.is_(None)
    )
    if session_id is not None:
        statement = statement.where(UserSession.id == session_id)
    if except_id is not None:
        statement = statement.where(UserSession.id != except_id)
    result = await db.execute(statement.values(ended_at=utcnow(), ended_reason=reason[:32]))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(db, "session.ended", user_id, count=count, reason=reason)
    return count


async def listed(db: AsyncSession, settings: Settings, user_id: int) -> list[UserSession]:
    """The user's sessions that may still act, most recently active first."""
    now = utcnow()
    rows = (
        await db.execute(
            select(UserSession)
            .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
            .order_by(UserSession.last_active_at.desc())
        )
    ).scalars()
    return [row for row in rows if end_reason(settings, row, now) is None]


# --- the current request's browser --------------------------------------------------------


def current() -> UserSession | None:
    record: UserSession | None = g.get("login")
    return record


def _bind(user: User, record: UserSession, token: str) -> None:
    """Give this browser the session: a fresh Quart session bound to the record (nothing
    from before survives: no fixation) and a login cookie carrying only the token."""
    session.clear()
    session.permanent = record.remember
    session[BOUND_KEY] = record.id
    login_user(AuthUser(token), remember=record.remember)
    g.user = user
    g.login = record


async def log_in(
    db: AsyncSession, settings: Settings, user: User, *, remember: bool, second_factor: str
) -> None:
    """Log `user` in on this browser, after the password and whatever second factor the
    account needs: record it, start a new session, mail about a new browser."""
    audit.record(db, "login.succeeded", user.id, second_factor=second_factor)
    ip, agent = audit.request_context()
    record, token = await create(db, user, remember=remember, ip=ip, user_agent=agent)
    await db.commit()
    await notices.new_login(db, settings, user)
    _bind(user, record, token)
    if second_factor in SECOND_FACTORS:
        mark_fresh()


async def restart(db: AsyncSession, user: User, reason: str) -> None:
    """End every session of `user` and carry on in this browser on a new one (after a
    password change: whoever else had a session is out). Commits."""
    remember = bool(getattr(current(), "remember", False))
    await end(db, user.id, reason=reason)
    ip, agent = audit.request_context()
    record, token = await create(db, user, remember=remember, ip=ip, user_agent=agent)
    await db.commit()
    _bind(user, record, token)


async def log_out(db: AsyncSession, reason: str = "logout") -> None:
    """End this browser's session server-side and drop its cookies. Commits."""
    record = current()
    if record is not None:
        await end(db, record.user_id, session_id=record.id, reason=reason)
        await db.commit()
    forget_browser()


def forget_browser() -> None:
    """Drop this browser's cookies (its server-side session is ended elsewhere)."""
    session.clear()
    logout_user()
    g.user = None
    g.login = None


def mark_fresh() -> None:
    """A second factor was just given in this browser's session."""
    session[FRESH_KEY] = utcnow().timestamp()


def is_fresh(user: User) -> bool:
    """A push, code or enrolment within the last few minutes, in this very session."""
    fresh_at = session.get(FRESH_KEY, 0)
    now = utcnow()
    if isinstance(fresh_at, int | float) and now.timestamp() - fresh_at < FRESH_FOR.total_seconds():
        return True
    enabled = user.push_enabled_at
    return enabled is not None and now - enabled < FRESH_FOR
