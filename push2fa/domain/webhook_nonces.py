"""Webhook nonces: a callback is fresh only near its own timestamp, and counts once.

The push service signs each callback over a nonce (its Unix time); a nonce far from now,
in the past or the future, is refused, and each (nonce, signature) pair is stored so a
replay of the same signed callback is refused too.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.models import WebhookNonce, utcnow

WINDOW_SECONDS = 300


def is_fresh(nonce: str, now: float) -> bool:
    try:
        stamp = float(nonce)
    except ValueError:
        return False
    return abs(now - stamp) <= WINDOW_SECONDS


# One statement object, reused with new parameters: no ORM object and no unit of work
# per callback, and SQLAlchemy's compiled form is found by identity.
_INSERT = insert(WebhookNonce.metadata.tables[WebhookNonce.__tablename__])


async def remember(db: AsyncSession, nonce: str, sig: str) -> bool:
    """Store the (nonce, signature) pair; False if it was seen before (a replay).

    Not committed: the pair commits with the decision, in one write transaction (one wait
    for SQLite's write lock per callback, not two). A concurrent copy of the same callback
    still fails on the unique key, when its INSERT reaches the database."""
    row = {"signature": sig[:128], "nonce": nonce[:64], "received_at": utcnow()}
    try:
        await db.execute(_INSERT, row)
    except IntegrityError:
        await db.rollback()
        return False
    return True


async def prune(db: AsyncSession) -> None:
    """Forget pairs older than the freshness window: they would be rejected as stale anyway."""
    cutoff = utcnow() - timedelta(seconds=2 * WINDOW_SECONDS)
    await db.execute(delete(WebhookNonce).where(WebhookNonce.received_at < cutoff))
    await db.commit()
