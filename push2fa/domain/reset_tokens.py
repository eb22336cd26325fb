"""Signed, single-use, short-lived password-reset tokens.

The token names the user and a fingerprint of the current password hash, so it dies as
soon as the password changes; its id is also recorded when spent, so it works once.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.domain.inputs import parse_id
from push2fa.models import UsedToken, User, utcnow

RESET_MAX_AGE = timedelta(minutes=30)
SALT = "push2fa password reset"


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def make_reset_token(secret_key: str, user: User) -> str:
    payload = {"u": user.id, "p": _fingerprint(user), "j": secrets.token_urlsafe(16)}
    return _serializer(secret_key).dumps(payload)


async def read_reset_token(
    db: AsyncSession, secret_key: str, token: str
) -> tuple[User, str] | None:
    """The user and token id, if the token is genuine, fresh, unused and still current."""
    try:
        payload = _serializer(secret_key).loads(token, max_age=int(RESET_MAX_AGE.total_seconds()))
        user_id, fingerprint, token_id = (
            parse_id(payload["u"]),
            str(payload["p"]),
            str(payload["j"]),
        )
    except (BadData, KeyError, TypeError, ValueError):
        return None
    if user_id is None:  # signed, yet no id a row can have (an old or foreign format)
        return None
    user = await db.get(User, user_id)
    if user is None or not secrets.compare_digest(fingerprint, _fingerprint(user)):
        return None
    if await db.get(UsedToken, token_id) is not None:
        return None
    return user, token_id


async def spend_token(db: AsyncSession, token_id: str) -> bool:
    """Mark the token used; False when another request spent it first."""
    db.add(UsedToken(token_id=token_id, expires_at=utcnow() + RESET_MAX_AGE))
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        return False
    return True
