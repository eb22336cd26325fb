"""Trusted browsers: "don't ask again on this browser for 30 days".

The cookie holds a row id and a random secret; the database keeps only a keyed hash of the
secret, so a database leak yields no usable cookie. A trusted browser stops counting after
its expiry, a password change, a "this wasn't me" report, or a revocation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.wrappers import Response

from push2fa.config import Settings
from push2fa.domain import audit
from push2fa.domain.inputs import parse_id
from push2fa.domain.useragent import describe
from push2fa.models import TrustedDevice, User, utcnow

COOKIE = "push2fa_trusted"


def _digest(settings: Settings, secret: str) -> str:
    return hmac.new(settings.secret_key.encode(), secret.encode(), hashlib.sha256).hexdigest()


async def issue(db: AsyncSession, settings: Settings, user: User, ip: str, user_agent: str) -> str:
    """Record a trusted browser for `user`; return the cookie value. Commits."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    device = TrustedDevice(
        user_id=user.id,
        token_hash=_digest(settings, secret),
        browser=describe(user_agent)[:120],
        ip=ip[:64],
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(days=settings.trusted_browser_days),
    )
    db.add(device)
    await db.flush()
    audit.record(db, "trusted_browser.added", user.id, device=device.id)
    await db.commit()
    return f"{device.id}.{secret}"


async def check(
    db: AsyncSession, settings: Settings, user: User, cookie: str | None
) -> TrustedDevice | None:
    """The trusted-browser row this cookie proves for `user`, if still valid."""
    if not cookie or "." not in cookie or len(cookie) > 128:
        return None
    raw_id, _, secret = cookie.partition(".")
    device_id = parse_id(raw_id)
    if device_id is None:
        return None
    device = await db.get(TrustedDevice, device_id)
    now = utcnow()
    if (
        device is None
        or device.user_id != user.id
        or device.revoked_at is not None
        or device.expires_at <= now
        or (user.password_changed_at is not None and device.created_at < user.password_changed_at)
        or not hmac.compare_digest(device.token_hash, _digest(settings, secret))
    ):
        return None
    await db.execute(
        update(TrustedDevice).where(TrustedDevice.id == device.id).values(last_used_at=now)
    )
    return device


def set_cookie(response: Response, settings: Settings, value: str) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=settings.trusted_browser_days * 86400,
        httponly=True,
        secure=settings.is_https,
        samesite="Lax",
        path="/",
    )


async def listed(db: AsyncSession, user_id: int) -> list[TrustedDevice]:
    now = utcnow()
    return list(
        (
            await db.execute(
                select(TrustedDevice)
                .where(
                    TrustedDevice.user_id == user_id,
                    TrustedDevice.revoked_at.is_(None),
                    TrustedDevice.expires_at > now,
                )
                .order_by(TrustedDevice.last_used_at.desc())
            )
        ).scalars()
    )


async def revoke(db: AsyncSession, user_id: int, device_id: int | None = None) -> int:
    """Revoke one trusted browser of `user_id`, or all of them. Returns how many."""
    statement = update(TrustedDevice).where(
        TrustedDevice.user_id == user_id, TrustedDevice.revoked_at.is_(None)
    )
    if device_id is not None:
        statement = statement.where(TrustedDevice.id == device_id)
    result = await db.execute(statement.values(revoked_at=utcnow()))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(db, "trusted_browser.revoked", user_id, count=count)
    return count
