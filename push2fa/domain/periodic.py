"""Background loops every worker runs: expiry sweep, the status-poll safety net, and
watching enrolments. They work from the database, not from in-memory timers, so they
survive the worker that started a challenge; each transition is still won exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, exists, select, update

from push2fa import heap, mail_budget
from push2fa.authy.errors import AuthyError
from push2fa.domain import audit, challenges, webhook_nonces
from push2fa.domain import enrollment as enrol
from push2fa.domain.push_answers import apply_answer
from push2fa.models import ChallengeStatus, Enrollment, LoginChallenge, utcnow
from push2fa.services import Services

log = logging.getLogger("push2fa.workers")

TICK_SECONDS = 0.5
NONCE_PRUNE_EVERY = 60.0
AUDIT_PRUNE_EVERY = 3600.0
MAIL_PRUNE_EVERY = 600.0
# How stale a waiting page may get when a broker message is lost, at worst.
REDELIVERY_INTERVAL = 1.0
# How far back each redelivery pass looks before the previous pass began: covers a
# decision stamped just before its commit landed, and small clock skew between workers.
REDELIVERY_LOOKBACK = timedelta(seconds=5)
ENROLLMENT_POLL_START = 1.0
ENROLLMENT_POLL_MAX = 5.0

Step = Callable[[Services], Awaitable[None]]


# Whether a pending enrolment's phone is due to be asked about.
_ENROLMENT_DUE = and_(
    Enrollment.status == "pending",
    Enrollment.next_poll_at <= bindparam("now", type_=Enrollment.next_poll_at.type),
)
# One read answers, for the tick, which of its steps has anything to do.
_DUE = select(
    challenges.EXPIRY_DUE.label("expiry"),
    challenges.POLL_DUE.label("polls"),
    exists().where(_ENROLMENT_DUE).label("enrolments"),
)


async def tick_once(svc: Services) -> None:
    """The sweep, the status poll and the enrolment watch, each only if something is due.

    Most ticks nothing is: one read on a plain connection says so, where each step's own
    session (begin, read, commit, close) cost several trips to the database's thread and
    more Python than the read, every half second, whether or not a page was waiting."""
    async with svc.db.engine.connect() as connection:
        due = (await connection.execute(_DUE, {"now": utcnow()})).one()
    if due.expiry:
        await sweep_once(svc)
    if due.polls:
        await poll_once(svc)
    if due.enrolments:
        await watch_enrollments_once(svc)


async def sweep_once(svc: Services) -> None:
    async with svc.db.session() as db:
        await challenges.expire_due(db, svc.realtime)


async def poll_once(svc: Services) -> None:
    """Ask the push service about pushes whose callback is late (never the browser):
    at most `status_poll_limit` times each, within the client's per-second budget, and
    not at all while verified callbacks are arriving."""
    client = svc.push_client()
    if svc.settings.status_poll_limit == 0:
        return
    allowed = client.poll_budget.available()
    if allowed == 0:
        return
    async with svc.db.session() as db:
        due = await challenges.claim_polls(
            db,
            svc.settings.status_poll_delay,
            limit=allowed,
            per_challenge=svc.settings.status_poll_limit,
        )
        client.poll_budget.spend(len(due))
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


_ENROLLMENTS_DUE = select(Enrollment).where(_ENROLMENT_DUE).limit(50)


async def watch_enrollments_once(svc: Services) -> None:
    """Ask the push service whether pending enrolments' phones have scanned the code."""
    now = utcnow()
    async with svc.db.session() as db:
        pending = (await db.execute(_ENROLLMENTS_DUE, {"now": now})).scalars().all()
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


class Redelivery:
    """Send sockets the decisions they missed, from the database: the safety net under
    the broker (at-most-once pub/sub, outages) and under the connect-time race where a
    decision lands between a socket's authorisation and its joining the room.

    Each pass reads only what was decided since the previous pass (less a margin for
    commits in flight and clocks of other workers), from the decided_at index, and checks
    those against this process's rooms: its cost follows the decision rate, never the
    number of waiting pages."""

    def __init__(self) -> None:
        self._since: datetime | None = None

    async def __call__(self, svc: Services) -> None:
        started = utcnow()
        since = self._since or started - REDELIVERY_LOOKBACK
        async with svc.db.session() as db:
            decided = await challenges.decided_since(db, since)
            behind = [
                public_id
                for public_id, status in decided
                if svc.realtime.has_sockets_behind(public_id, status)
            ]
            rows = (
                (
                    await db.execute(
                        select(LoginChallenge).where(LoginChallenge.public_id.in_(behind))
                    )
                )
                .scalars()
                .all()
                if behind
                else []
            )
        self._since = started - REDELIVERY_LOOKBACK
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
        await webhook_nonces.prune(db)


async def prune_audit_once(svc: Services) -> None:
    async with svc.db.session() as db:
        await audit.prune(db, svc.settings.audit_retention_days)


async def prune_mail_sends_once(svc: Services) -> None:
    async with svc.db.session() as db:
        await mail_budget.prune(db)


def steps() -> tuple[tuple[Step, float], ...]:
    """Each periodic step and how often it runs, in seconds (fresh state per loop)."""
    return (
        (tick_once, TICK_SECONDS),
        (Redelivery(), REDELIVERY_INTERVAL),
        (prune_once, NONCE_PRUNE_EVERY),
        (heap.HeapFreezer(), heap.CHECK_EVERY),
        (prune_audit_once, AUDIT_PRUNE_EVERY),
        (prune_mail_sends_once, MAIL_PRUNE_EVERY),
    )


async def run_forever(svc: Services) -> None:
    """One loop for all periodic work, so an idle server costs one wake-up per tick; a
    failing step is logged and does not hold up the others."""
    plan = steps()
    last_run = [0.0] * len(plan)
    while True:
        for index, (step, every) in enumerate(plan):
            if time.monotonic() - last_run[index] < every:
                continue
            last_run[index] = time.monotonic()
            try:
                await step(svc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background step %s failed", getattr(step, "__name__", step))
        await asyncio.sleep(TICK_SECONDS)
