"""Recovery codes: ten single-use codes shown once, for when the phone is lost.

Each code carries 50 random bits, so a keyed SHA-256 is enough to store it (bcrypt's cost
buys nothing against that much entropy), and using one is a conditional UPDATE: a code
works exactly once even if two requests race.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.config import Settings
from push2fa.domain import audit
from push2fa.models import RecoveryCode, utcnow

COUNT = 10
LOW_WATER = 2
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def _normalise(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())[:20]


def _digest(settings: Settings, code: str) -> str:
    key = settings.secret_key.encode()
    return hmac.new(key, b"recovery:" + _normalise(code).encode(), hashlib.sha256).hexdigest()


def _new_code() -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(10))
    return f"{chars[:5]}-{chars[5:]}"


async def regenerate(db: AsyncSession, settings: Settings, user_id: int) -> list[str]:
    """Replace the user's codes with ten new ones; return them (the only time they are
    visible). Commits."""
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_new_code() for _ in range(COUNT)]
    db.add_all(RecoveryCode(user_id=user_id, code_hash=_digest(settings, c)) for c in codes)
    audit.record(db, "recovery_codes.generated", user_id)
    await db.commit()
    return codes


async def spend(db: AsyncSession, settings: Settings, user_id: int, code: str) -> bool:
    """Mark `code` used if it is one of the user's unused codes, in the caller's
    transaction (the caller commits it together with the login it makes, or rolls back)."""
    if not _normalise(code):
        return False
    spent = (
        await db.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == _digest(settings, code),
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=utcnow())
            .returning(RecoveryCode.id)
        )
    ).first()
    if spent is None:
        return False
    audit.record(db, "recovery_code.used", user_id)
    return True


async def use(db: AsyncSession, settings: Settings, user_id: int, code: str) -> bool:
    """Spend `code` on its own (not as part of a login). Commits."""
    ok = await spend(db, settings, user_id, code)
    await db.commit()
    return ok


async def void(db: AsyncSession, user_id: int) -> None:
    """Forget every code of the user (2FA turned off): turning it on again makes a fresh
    set, shown once, and an old printout opens nothing. Caller commits."""
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


async def remaining(db: AsyncSession, user_id: int) -> int:
    return int(
        (
            await db.execute(
                select(func.count(RecoveryCode.id)).where(
                    RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
                )
            )
        ).scalar_one()
    )
