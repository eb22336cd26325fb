"""Enrolling a phone: the registration JWT and QR code (spec §3.4), and recording success.

The server, not the page, finds out that the phone has scanned the code (it asks the push
service, see workers.py) and tells the page over Socket.IO.
"""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import jwt
import qrcode
import qrcode.image.svg
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.config import Settings
from push2fa.domain import audit, phones
from push2fa.models import Enrollment, User, utcnow
from push2fa.services import Publisher

# PUSH2FA_ENROLMENT_TOKEN_MINUTES's default; the app itself always uses ttl(settings).
# Kept for scripts that sign registration tokens outside the app (bench/seed.py).
ENROLLMENT_TTL = timedelta(minutes=5)
ENDINGS = {"completed", "expired"}


def ttl(settings: Settings) -> timedelta:
    """How long the app waits for the phone: as long as the push service's token lives
    (PUSH2FA_ENROLMENT_TOKEN_MINUTES), so the page never outlives or undercuts its code."""
    return timedelta(minutes=settings.enrolment_token_minutes)


def approver_url(settings: Settings, token: str) -> str | None:
    """Where the Approver enrols this phone, or None where it cannot run (another push
    service, or a public URL WebAuthn refuses: an IP address). The token rides in the
    fragment, which never reaches a server log or a Referer."""
    if not settings.uses_emulator or not phones.approver_possible(settings):
        return None
    return f"{settings.push_api_url}/approver/#t={token}"


def custom_user_id(user_id: int) -> str:
    return str(user_id)


def registration_token(settings: Settings, user_id: int, enrollment: Enrollment) -> str:
    """HS256 JWT signed with the API key: iss = app name, integer iat/exp, context."""
    claims = {
        "iss": settings.authy_app_name,
        "iat": int(enrollment.created_at.timestamp()),
        "exp": int(enrollment.expires_at.timestamp()),
        "context": {
            "custom_user_id": custom_user_id(user_id),
            "authy_app_id": settings.authy_app_id,
        },
    }
    return jwt.encode(claims, settings.authy_api_key, algorithm="HS256")


def qr_payload(token: str) -> str:
    return f"authy://account?token={token}"


def qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buffer = BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


async def start(db: AsyncSession, user: User, lifetime: timedelta) -> Enrollment:
    """A new enrolment for `user`, valid `lifetime`; any earlier pending one is abandoned."""
    now = utcnow()
    await db.execute(
        update(Enrollment)
        .where(Enrollment.user_id == user.id, Enrollment.status == "pending")
        .values(status="cancelled")
    )
    enrollment = Enrollment(
        user_id=user.id,
        status="pending",
        created_at=now.replace(microsecond=0),
        expires_at=now.replace(microsecond=0) + lifetime,
        next_poll_at=now,
        poll_count=0,
    )
    db.add(enrollment)
    audit.record(db, "twofa.enrollment_started", user.id)
    await db.commit()
    return enrollment


async def latest(db: AsyncSession, user_id: int) -> Enrollment | None:
    return (
        await db.execute(
            select(Enrollment)
            .where(Enrollment.user_id == user_id)
            .order_by(Enrollment.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


def event_payload(enrollment: Enrollment) -> dict[str, str]:
    return {"status": enrollment.status, "expires_at": enrollment.expires_at.isoformat()}


async def finish(
    db: AsyncSession,
    realtime: Publisher,
    enrollment: Enrollment,
    status: str,
    authy_id: int | None = None,
) -> bool:
    """pending → completed | expired, once (conditional UPDATE); the winner tells the page.
    A completion names the phone's authy_id: without one nothing could turn push on."""
    if status not in ENDINGS or (status == "completed") != (authy_id is not None):
        raise ValueError(f"not an end of an enrolment: {status!r} with authy_id {authy_id!r}")
    now = utcnow()
    won = (
        await db.execute(
            update(Enrollment)
            .where(Enrollment.id == enrollment.id, Enrollment.status == "pending")
            .values(status=status, completed_at=now, authy_id=authy_id)
            .returning(Enrollment.id)
        )
    ).first()
    if won is None:
        await db.commit()  # ends the no-op transaction without expiring loaded objects
        return False
    if status == "completed":
        await db.execute(
            update(User)
            .where(User.id == enrollment.user_id)
            .values(authy_id=authy_id, push_enabled_at=now)
        )
        audit.record(db, "twofa.enabled", enrollment.user_id)
        audit.record(db, phones.ADDED, enrollment.user_id)
    else:
        audit.record(db, f"twofa.enrollment_{status}", enrollment.user_id)
    await db.commit()
    enrollment.status = status
    await realtime.publish_enrollment(enrollment.user_id, event_payload(enrollment))
    if status == "completed":
        await phones.tell_owner(db, enrollment.user_id, "added")
    return True
