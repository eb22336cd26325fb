"""Defences against push fatigue and guessing: the push budget, consecutive-failure lock,
and "this wasn't me".

NIST SP 800-63B-4: a push verifier limits the pushes sent since the last success, and a
verifier throttles consecutive failures (at most 100). An attacker who has the password
therefore gets a handful of pushes, ever slower, and then none.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa import audit, challenges, mail
from push2fa.config import Settings
from push2fa.domain import sessions
from push2fa.models import (
    AuditEvent,
    ChallengeStatus,
    LoginChallenge,
    User,
    utcnow,
)
from push2fa.realtime import Realtime
from push2fa.twofa import trusted

log = logging.getLogger("push2fa.protection")

BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)
UNANSWERED = (
    ChallengeStatus.PENDING.value,
    ChallengeStatus.DENIED.value,
    ChallengeStatus.EXPIRED.value,
    ChallengeStatus.CANCELLED.value,
)


@dataclass(frozen=True)
class PushVerdict:
    """Whether a push may be sent now, and if not, from when and why."""

    allowed: bool
    reason: str = ""
    retry_at: datetime | None = None


async def last_success(db: AsyncSession, user_id: int) -> datetime | None:
    return (
        await db.execute(
            select(func.max(AuditEvent.created_at)).where(
                AuditEvent.user_id == user_id, AuditEvent.event == "login.succeeded"
            )
        )
    ).scalar_one_or_none()


async def push_verdict(db: AsyncSession, settings: Settings, user: User) -> PushVerdict:
    """May another push go to `user`'s phone now?"""
    now = utcnow()
    if user.second_factor_locked_at is not None:
        return PushVerdict(False, "locked")
    if user.push_blocked_until is not None and user.push_blocked_until > now:
        return PushVerdict(False, "reported", user.push_blocked_until)
    since = now - timedelta(seconds=settings.push_budget_window)
    success = await last_success(db, user.id)
    if success is not None and success > since:
        since = success
    rows = (
        (
            await db.execute(
                select(LoginChallenge.created_at)
                .where(
                    LoginChallenge.user_id == user.id,
                    LoginChallenge.created_at > since,
                    LoginChallenge.status.in_(UNANSWERED),
                    LoginChallenge.reason.is_distinct_from("push_failed"),
                )
                .order_by(LoginChallenge.created_at.desc())
            )
        )
        .scalars()
        .all()
    )
    excess = len(rows) - settings.push_budget
    if excess < 0:
        return PushVerdict(True)
    wait = min(BACKOFF_BASE * (2**excess), BACKOFF_MAX)
    retry_at = rows[0] + wait
    if retry_at <= now:
        return PushVerdict(True)
    return PushVerdict(False, "budget", retry_at)


async def record_failure(
    db: AsyncSession, settings: Settings, user_id: int, kind: str, realtime: Realtime | None
) -> bool:
    """Count one failed attempt; lock the second factor when the limit is reached.
    Returns True if this failure locked it. Commits."""
    await db.execute(
        update(User).where(User.id == user_id).values(failed_attempts=User.failed_attempts + 1)
    )
    locked = (
        await db.execute(
            update(User)
            .where(
                User.id == user_id,
                User.failed_attempts >= settings.max_failed_attempts,
                User.second_factor_locked_at.is_(None),
            )
            .values(second_factor_locked_at=utcnow())
            .returning(User.id)
        )
    ).first() is not None
    audit.record(db, "auth.failure", user_id, kind=kind)
    if locked:
        audit.record(db, "twofa.locked", user_id, after=settings.max_failed_attempts)
    await db.commit()
    if locked:
        user = await db.get(User, user_id)
        if user is not None:
            _notify(
                settings,
                user.email,
                "Two-factor login locked on your push2fa account",
                f"Hello {user.username},\n\nAfter {settings.max_failed_attempts} failed "
                "attempts in a row (wrong passwords, denied pushes or wrong codes), "
                "two-factor login for your account is locked. If this was not you, "
                "someone knows or is guessing your password.\n\nTo unlock it, reset your "
                f"password: {settings.public_url}/auth/reset\n",
            )
        if realtime is not None:
            await end_pending_pushes(db, realtime, user_id, reason="locked")
    return locked


_mail_tasks: set[asyncio.Task[None]] = set()


def _notify(settings: Settings, to: str, subject: str, body: str) -> None:
    """Send a notice without holding up the request or worker that triggered it."""
    task = asyncio.get_running_loop().create_task(mail.send_mail(settings, to, subject, body))
    _mail_tasks.add(task)
    task.add_done_callback(_mail_tasks.discard)


async def record_success(db: AsyncSession, user_id: int) -> None:
    await db.execute(update(User).where(User.id == user_id).values(failed_attempts=0))


async def end_pending_pushes(
    db: AsyncSession, realtime: Realtime, user_id: int, reason: str
) -> int:
    pending = (
        (
            await db.execute(
                select(LoginChallenge.id).where(
                    LoginChallenge.user_id == user_id,
                    LoginChallenge.status == ChallengeStatus.PENDING.value,
                )
            )
        )
        .scalars()
        .all()
    )
    ended = 0
    for challenge_id in pending:
        if await challenges.cancel(db, realtime, challenge_id, by="server", reason=reason):
            ended += 1
    return ended


async def report_not_me(
    db: AsyncSession, settings: Settings, realtime: Realtime, user_id: int, source: str
) -> None:
    """'This wasn't me': block pushes for a while, end every pending push and every
    session, forget trusted browsers, and make the user change the password next time."""
    now = utcnow()
    await db.execute(
        update(User)
        .where(User.id == user_id)
        .values(
            push_blocked_until=now + timedelta(minutes=settings.report_block_minutes),
            must_change_password=True,
        )
    )
    await sessions.end(db, user_id, reason="reported")
    await trusted.revoke(db, user_id)
    audit.record(db, "push.reported", user_id, source=source)
    await db.commit()
    await end_pending_pushes(db, realtime, user_id, reason="reported")


async def unlock(db: AsyncSession, user_id: int) -> None:
    """A password reset proves control of the mailbox: the lock and counter start over."""
    await db.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_attempts=0, second_factor_locked_at=None)
    )
