"""Background loops every worker runs: expiry sweep, the status-poll safety net, and
watching enrolments. They work from the database, not from in-memory timers, so they
survive the worker that started a challenge; each transition is still won exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from sqlalchemy import select, update

from push2fa import audit, challenges, webhooks
from push2fa.authy.errors import AuthyError
from push2fa.domain import mail_budget
from push2fa.models import ChallengeStatus, Enrollment, LoginChallenge, utcnow
from push2fa.services import Services
from push2fa.twofa import enrollment as enrol
from push2fa.twofa.answers import apply_answer

log = logging.getLogger("push2fa.workers")

TICK_SECONDS = 0.5
NONCE_PRUNE_EVERY = 60.0
AUDIT_PRUNE_EVERY = 3600.0
MAIL_PRUNE_EVERY = 600.0
# How stale a waiting page may get when a broker message is lost, at worst.
REDELIVERY_INTERVAL = 1.0
REDELIVERY_BATCH = 500
ENROLLMENT_POLL_START = 1.0
ENROLLMENT_POLL_MAX = 5.0


async def sweep_once(svc: Services) -> None:
    async with svc.db.session() as db:
        await challenges.expire_due(db, svc.realtime)


async def poll_once(svc: Services) -> None:
    """Ask the push service about pushes whose callback is late (never the browser)."""
    client = svc.push_client()
    async with svc.db.session() as db:
        due = await challenges.claim_polls(db, svc.settings.status_poll_delay)
        for challenge in due:
            try:
                answer = await client.approval_request_status(challenge.provider_uuid or "")
            except AuthyError as exc:
                log.info("status poll for challenge %s failed: %s", challenge.id, exc)
                continue
            if answer.status in {ChallengeStatus.APPROVED, ChallengeStatus.DENIED}:
                reason = answer.raw.get("reason")
                await apply_answer(
                    db,
                    svc,
                    challenge,
                    ChallengeStatus(answer.status),
                    reason if isinstance(reason, str) else None,
                    by="poll",
                )


async def watch_enrollments_once(svc: Services) -> None:
    """Ask the push service whether pending enrolments' phones have scanned the code."""
    now = utcnow()
    async with svc.db.session() as db:
        pending = (
            (
                await db.execute(
                    select(Enrollment)
                    .where(Enrollment.status == "pending", Enrollment.next_poll_at <= now)
                    .limit(50)
                )
            )
            .scalars()
            .all()
        )
        for enrollment in pending:
            if enrollment.expires_at <= now:
                await enrol.finish(db, svc.realtime, enrollment, "expired")
                continue
            delay = min(ENROLLMENT_POLL_START * 1.5**enrollment.poll_count, ENROLLMENT_POLL_MAX)
            claimed = (
                await db.execute(
                    update(Enrollment)
                    .where(
                        Enrollment.id == enrollment.id,
                        Enrollment.next_poll_at == enrollment.next_poll_at,
                    )
                    .values(
                        next_poll_at=now + timedelta(seconds=delay),
                        poll_count=Enrollment.poll_count + 1,
                    )
                    .returning(Enrollment.id)
                )
            ).first()
            await db.commit()
            if claimed is None:
                continue
            try:
                status = await svc.push_client().registration_status(
                    enrol.custom_user_id(enrollment.user_id)
                )
            except AuthyError as exc:
                log.info("registration status for user %s failed: %s", enrollment.user_id, exc)
                continue
            if status.completed and status.authy_id is not None:
                await enrol.finish(db, svc.realtime, enrollment, "completed", status.authy_id)


async def redeliver_once(svc: Services) -> None:
    """Send sockets the decisions they missed, from the database: the safety net under
    the broker (at-most-once pub/sub, outages) and under the connect-time race where a
    decision lands between a socket's authorisation and its joining the room."""
    waiting = svc.realtime.waiting_challenges()
    for start in range(0, len(waiting), REDELIVERY_BATCH):
        async with svc.db.session() as db:
            rows = (
                (
                    await db.execute(
                        select(LoginChallenge).where(
                            LoginChallenge.public_id.in_(waiting[start : start + REDELIVERY_BATCH]),
                            LoginChallenge.status != ChallengeStatus.PENDING.value,
                        )
                    )
                )
                .scalars()
                .all()
            )
        for challenge in rows:
            payload = challenges.event_payload(challenge)
            missed = await svc.realtime.catch_up(challenge.public_id, payload)
            if missed:
                # Normal only around Redis trouble or a decision racing a socket's connect.
                log.info(
                    "redelivered %s to %s socket(s) from the database", challenge.status, missed
                )


async def prune_once(svc: Services) -> None:
    async with svc.db.session() as db:
        await webhooks.prune_nonces(db)


async def prune_audit_once(svc: Services) -> None:
    async with svc.db.session() as db:
        await audit.prune(db, svc.settings.audit_retention_days)


async def prune_mail_sends_once(svc: Services) -> None:
    async with svc.db.session() as db:
        await mail_budget.prune(db)


# Each periodic step and how often it runs, in seconds.
STEPS = (
    (sweep_once, TICK_SECONDS),
    (poll_once, TICK_SECONDS),
    (watch_enrollments_once, TICK_SECONDS),
    (redeliver_once, REDELIVERY_INTERVAL),
    (prune_once, NONCE_PRUNE_EVERY),
    (prune_audit_once, AUDIT_PRUNE_EVERY),
    (prune_mail_sends_once, MAIL_PRUNE_EVERY),
)


async def run_forever(svc: Services) -> None:
    """One loop for all periodic work, so an idle server costs one wake-up per tick; a
    failing step is logged and does not hold up the others."""
    last_run = {step: 0.0 for step, _ in STEPS}
    while True:
        for step, every in STEPS:
            if time.monotonic() - last_run[step] < every:
                continue
            last_run[step] = time.monotonic()
            try:
                await step(svc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background step %s failed", step.__name__)
        await asyncio.sleep(TICK_SECONDS)
