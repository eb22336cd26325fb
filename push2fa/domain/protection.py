"""Defences against push fatigue and guessing: the consecutive-failure lock and "this
wasn't me" (the push budget itself is push2fa/domain/push_budget.py).

NIST SP 800-63B-4: a verifier throttles consecutive failures of the second factor (at most
100). Only second-factor failures count (denied pushes, wrong numbers, wrong codes): a
wrong password proves nothing about the phone, and counting it would let anyone who knows
a username lock its owner out.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa import mail
from push2fa.config import Settings
from push2fa.domain import audit, challenges, push_budget, sessions, trusted_browsers
from push2fa.models import (
    ChallengeStatus,
    LoginChallenge,
    User,
    utcnow,
)
from push2fa.services import Publisher

log = logging.getLogger("push2fa.protection")


async def record_failure(
    db: AsyncSession, settings: Settings, user_id: int, kind: str, realtime: Publisher | None
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
                "second-factor attempts in a row (denied pushes, wrong numbers or wrong "
                "codes), two-factor login for your account is locked: no more pushes or app "
                "codes are accepted. If this "
                "was not you, someone knows your password: change it.\n\nTo get back in, "
                "log in with a recovery code, or reset your password: "
                f"{settings.public_url}/auth/reset\n",
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
    """A login with a second factor: the failure count, the lock (only a recovery code can
    log in while locked) and the push budget all start over. Caller commits."""
    await db.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_attempts=0, second_factor_locked_at=None)
    )
    await push_budget.start_over(db, user_id)


async def end_pending_pushes(
    db: AsyncSession, realtime: Publisher, user_id: int, reason: str
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
    db: AsyncSession, settings: Settings, realtime: Publisher, user_id: int, source: str
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
    await trusted_browsers.revoke(db, user_id)
    audit.record(db, "push.reported", user_id, source=source)
    await db.commit()
    await end_pending_pushes(db, realtime, user_id, reason="reported")
