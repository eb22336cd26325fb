"""The push budget: how many pushes may go to an account's phone since its last login.

NIST SP 800-63B-4 limits the pushes sent since the last successful authentication. The
count lives in one column of the account row and is taken with one conditional UPDATE
(`... WHERE pushes_since_login < budget`), so parallel logins, in one process or many, on
SQLite or PostgreSQL, can never put more pushes on the phone than the budget. The budget
never refills with time: only a successful login (push, recovery code, app code, trusted
browser) or a confirmation from the account's mailbox starts it over.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.config import Settings
from push2fa.domain import audit
from push2fa.models import UsedToken, User, utcnow

LOCKED = "locked"
REPORTED = "reported"
SPENT = "budget"

CONFIRM_MAX_AGE = timedelta(minutes=15)
CONFIRM_SALT = "push2fa allow pushes"


@dataclass(frozen=True)
class PushVerdict:
    """Whether a push went out now, and if not, why and (for a pause) until when."""

    allowed: bool
    reason: str = ""
    retry_at: datetime | None = None


async def reserve(db: AsyncSession, settings: Settings, user_id: int) -> PushVerdict:
    """Take one push from the budget, or say why none may go. Commits.

    The check and the count are one statement: a row whose counter has reached the
    budget, or whose pushes are locked or paused, is simply not updated."""
    now = utcnow()
    taken = (
        await db.execute(
            update(User)
            .where(
                User.id == user_id,
                User.pushes_since_login < settings.push_budget,
                User.second_factor_locked_at.is_(None),
                or_(User.push_blocked_until.is_(None), User.push_blocked_until <= now),
            )
            .values(pushes_since_login=User.pushes_since_login + 1)
            .returning(User.id)
            .execution_options(synchronize_session=False)
        )
    ).first()
    await db.commit()
    if taken is not None:
        return PushVerdict(True)
    user = await db.get(User, user_id, populate_existing=True)
    if user is None or user.second_factor_locked_at is not None:
        return PushVerdict(False, LOCKED)
    if user.push_blocked_until is not None and user.push_blocked_until > now:
        return PushVerdict(False, REPORTED, user.push_blocked_until)
    return PushVerdict(False, SPENT)


async def refund(db: AsyncSession, user_id: int) -> None:
    """Give back a push the push service never delivered (it failed). Caller commits."""
    await db.execute(
        update(User)
        .where(User.id == user_id, User.pushes_since_login > 0)
        .values(pushes_since_login=User.pushes_since_login - 1)
        .execution_options(synchronize_session=False)
    )


async def start_over(db: AsyncSession, user_id: int) -> None:
    """A successful login: the budget is full again. Caller commits."""
    await db.execute(
        update(User)
        .where(User.id == user_id)
        .values(pushes_since_login=0)
        .execution_options(synchronize_session=False)
    )


# --- confirming by e-mail -----------------------------------------------------------------


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=CONFIRM_SALT)


def confirm_token(settings: Settings, user: User) -> str:
    """A single-use, short-lived link token that starts the budget over for `user`."""
    return _serializer(settings).dumps({"u": user.id, "j": secrets.token_urlsafe(16)})


def _read(settings: Settings, token: str) -> tuple[int, str] | None:
    try:
        payload = _serializer(settings).loads(token, max_age=int(CONFIRM_MAX_AGE.total_seconds()))
        return int(payload["u"]), str(payload["j"])
    except (BadData, KeyError, TypeError, ValueError, OverflowError):
        return None


async def token_is_usable(db: AsyncSession, settings: Settings, token: str) -> bool:
    read = _read(settings, token)
    return read is not None and await db.get(UsedToken, read[1]) is None


async def confirm(db: AsyncSession, settings: Settings, token: str) -> bool:
    """Spend the token and fill the budget again; False if it is forged, old or used.
    Commits."""
    read = _read(settings, token)
    if read is None:
        return False
    user_id, token_id = read
    if await db.get(User, user_id) is None:
        return False
    db.add(UsedToken(token_id=token_id, expires_at=utcnow() + CONFIRM_MAX_AGE))
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        return False
    await start_over(db, user_id)
    audit.record(db, "push.budget_confirmed", user_id)
    await db.commit()
    return True
