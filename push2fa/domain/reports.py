"""The e-mailed "this wasn't me" link: signed, valid for a week, and good for one use.

A second use (a replayed link, a double click) changes nothing: the account was locked
down by the first, and a link in a mailbox must not become a lever to keep pushing it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.domain.inputs import parse_id
from push2fa.models import UsedToken, utcnow

SALT = "push2fa report"
MAX_AGE = timedelta(days=7)


@dataclass(frozen=True)
class ReportLink:
    user_id: int
    token_id: str  # what marks the link spent: signed, so it cannot be varied


def make_token(secret_key: str, user_id: int) -> str:
    payload = {"u": user_id, "j": secrets.token_urlsafe(12)}
    return URLSafeTimedSerializer(secret_key, salt=SALT).dumps(payload)


def read_token(secret_key: str, token: str) -> ReportLink | None:
    """The link's user and single-use id, if genuine and younger than a week."""
    try:
        data, signed_at = URLSafeTimedSerializer(secret_key, salt=SALT).loads(
            token, max_age=int(MAX_AGE.total_seconds()), return_timestamp=True
        )
        user_id = parse_id(data["u"])
        if user_id is None:
            return None
        jti = str(data.get("j", ""))[:32]
    except (BadData, KeyError, TypeError, ValueError, AttributeError):
        return None
    # The id comes from the signed payload and time, never from the token's text, whose
    # base64 has several spellings of the same signature.
    return ReportLink(user_id, f"report:{user_id}:{int(signed_at.timestamp())}:{jti}"[:64])


async def is_spent(db: AsyncSession, link: ReportLink) -> bool:
    return await db.get(UsedToken, link.token_id) is not None


async def spend(db: AsyncSession, link: ReportLink) -> bool:
    """Mark the link used; False when it already was (by an earlier or a racing request).
    Flushed in the caller's transaction."""
    db.add(UsedToken(token_id=link.token_id, expires_at=utcnow() + MAX_AGE))
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        return False
    return True
