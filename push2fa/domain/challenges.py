"""The login-challenge state machine: the ONLY code that changes a challenge's status.

    pending ──► approved ──► consumed
       ├──────────────────────► consumed   (answered in the browser: a code or a passkey)
       ├──────► denied
       ├──────► expired
       └──────► cancelled

Every transition is one conditional UPDATE (`... WHERE status = <from>`), so duplicate
webhooks, the expiry sweep, the status poll and a cancel can race, in one process or many:
exactly one wins. The winner publishes the new state after commit; the losers do nothing.
"""

from __future__ import annotations

import logging
import secrets
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    and_,
    bindparam,
    exists,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from push2fa.domain import audit
from push2fa.models import ChallengePurpose, ChallengeStatus, LoginChallenge, User, utcnow
from push2fa.services import Publisher

log = logging.getLogger("push2fa.challenges")

S = ChallengeStatus
DECISIONS = {S.APPROVED, S.DENIED}
# After an approval the page still has this long to complete the login, even if the
# challenge's own expiry passes meanwhile (the approval landed just in time).
COMPLETE_GRACE = timedelta(seconds=30)
# The safety-net poll's schedule, as multiples of the first delay: with the default 3 s,
# polls at +3 s, +15 s and +60 s after the push, then none (the page's expiry takes over).
POLL_STEPS = (1, 5, 20)


# Told, after commit and publish, about the challenges a transition ended and how: the one
# place that sees every final transition (e.g. to take the push off the phone). Per realtime
# server, i.e. per app; a listener must not raise and must not hold the caller up.
EndListener = Callable[[Sequence[LoginChallenge], S, str], Awaitable[None]]
_end_listeners: weakref.WeakKeyDictionary[Publisher, EndListener] = weakref.WeakKeyDictionary()


def on_end(realtime: Publisher, listener: EndListener) -> None:
    """Call ``listener(challenges, new_status, by)`` after every transition out of pending."""
    _end_listeners[realtime] = listener


@dataclass(frozen=True)
class Context:
    """Where a login attempt comes from, shown to the user on the page and the phone."""

    ip: str
    user_agent: str
    remember: bool = False
    next_path: str = "/"


def new_public_id() -> str:
    """256 random bits, URL-safe: used in room names, never guessable or sequential."""
    return secrets.token_urlsafe(32)


def event_payload(challenge: LoginChallenge) -> dict[str, Any]:
    """What the waiting page is told: status and timing, nothing secret."""
    return {
        "status": challenge.status,
        "expires_at": challenge.expires_at.isoformat(),
        "reason": challenge.reason,
        "purpose": challenge.purpose,
        "matching": challenge.match_code is not None,
    }


async def create(
    db: AsyncSession,
    user: User,
    context: Context,
    ttl: int,
    purpose: ChallengePurpose = ChallengePurpose.LOGIN,
    match_code: str | None = None,
    *,
    push: bool = True,
) -> LoginChallenge:
    """A new pending challenge for `user` (not yet sent to the phone). Commits.
    With ``push=False`` it is answered by a passkey only: no phone is asked."""
    if push and user.authy_id is None:
        raise ValueError("user has no push device")
    now = utcnow()
    challenge = LoginChallenge(
        public_id=new_public_id(),
        user_id=user.id,
        purpose=purpose.value,
        status=S.PENDING.value,
        authy_id=user.authy_id if push else None,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
        ip=context.ip[:64],
        user_agent=context.user_agent[:512],
        remember=context.remember,
        next_path=context.next_path,
        poll_count=0,
        match_code=match_code,
    )
    db.add(challenge)
    await db.flush()
    audit.record(db, "push.created", user.id, challenge=challenge.public_id[:8], purpose=purpose)
    await db.commit()
    return challenge


async def attach_provider(
    db: AsyncSession, challenge: LoginChallenge, provider_uuid: str, first_poll_in: float
) -> None:
    """Record the push service's request id once it has accepted the push. Not a status
    change: the challenge stays what it is (a cancel may already have won)."""
    next_poll = utcnow() + timedelta(seconds=first_poll_in)
    await db.execute(
        update(LoginChallenge)
        .where(LoginChallenge.id == challenge.id)
        .values(provider_uuid=provider_uuid, next_poll_at=next_poll)
    )
    await db.commit()
    challenge.provider_uuid = provider_uuid
    challenge.next_poll_at = next_poll


# Every statement of a transition is built once, with bound parameters, and reused: built
# per call, the expression objects and SQLAlchemy's cache key for them cost more Python
# than the statement itself (the webhook's profile in docs/benchmarks.md). They are Core
# statements over the table's columns, not the ORM's: the ORM's UPDATE ... RETURNING
# entity was a tenth of the event loop's busy time under callbacks (change 15 in
# docs/benchmarks-changes.md), and `_in_step` does what it did for the session.
_TABLE = LoginChallenge.metadata.tables[LoginChallenge.__tablename__]
_T = _TABLE.c
_ID = bindparam("b_id", type_=_T.id.type)
_PUBLIC_ID = bindparam("b_public_id", type_=_T.public_id.type)
_USER_ID = bindparam("b_user_id", type_=_T.user_id.type)
_NOW = bindparam("now", type_=_T.expires_at.type)
_GRACE_SINCE = bindparam("grace_since", type_=_T.decided_at.type)
_AT = bindparam("at", type_=_T.decided_at.type)  # when the transition happened
_OWNED = and_(_T.public_id == _PUBLIC_ID, _T.user_id == _USER_ID)
# The challenge a callback names: both the push service's request id and the device.
_NAMED_BY_CALLBACK = and_(
    _T.provider_uuid == bindparam("b_provider_uuid", type_=_T.provider_uuid.type),
    _T.authy_id == bindparam("b_authy_id", type_=_T.authy_id.type),
)
_NAMED = and_(_NAMED_BY_CALLBACK, _T.expires_at > _NOW)

# The challenges a transition may move, by name: each names the parameters it needs.
CONDITIONS: dict[str, ColumnElement[bool]] = {
    "live": and_(_T.id == _ID, _T.expires_at > _NOW),
    "late": and_(_T.id == _ID, _T.expires_at <= _NOW),
    "one": _T.id == _ID,
    "due": _T.expires_at <= _NOW,
    "completable": and_(_OWNED, or_(_T.expires_at > _NOW, _T.decided_at > _GRACE_SINCE)),
    "answerable": and_(_OWNED, _T.expires_at > _NOW),
    "named": _NAMED,
    "named_and_picked": and_(
        _NAMED,
        or_(
            _T.match_code.is_(None),
            _T.match_code == bindparam("b_pick", type_=_T.match_code.type),
        ),
    ),
}
_MAPPER = inspect(LoginChallenge)
# Each mapped attribute and its column, in the order a transition's RETURNING lists them.
_FIELDS = tuple((prop.key, prop.columns[0]) for prop in _MAPPER.column_attrs)
_statements: dict[tuple[str, S, S], Any] = {}


def _statement(condition: str, from_status: S, to_status: S) -> Any:
    """The one UPDATE for moving `condition`'s challenges from `from_status` to
    `to_status`, built on first use."""
    key = (condition, from_status, to_status)
    statement = _statements.get(key)
    if statement is not None:
        return statement
    # A decided challenge leaves the poll index (next_poll_at NULL), so the poll's range
    # scan sees only pending ones, however long the table's history grows.
    values: dict[str, Any] = {"status": to_status.value, "next_poll_at": None}
    if to_status == S.CONSUMED:
        values["consumed_at"] = _AT
    if to_status != S.CONSUMED or from_status == S.PENDING:
        values.update(
            decided_at=_AT,
            decided_by=bindparam("by", type_=_T.decided_by.type),
            reason=bindparam("why", type_=_T.reason.type),
        )
    # RETURNING the whole row: the winners come back already updated, with no second
    # SELECT or refresh, so SQLite's write lock is held for as few round trips as possible.
    statement = (
        update(_TABLE)
        .where(_T.status == from_status.value, CONDITIONS[condition])
        .values(**values)
        .returning(*(column for _, column in _FIELDS))
    )
    _statements[key] = statement
    return statement


def _in_step(session: Session, row: Row[Any]) -> LoginChallenge:
    """The session's object for a row the UPDATE returned, holding what the row holds (as
    the ORM's own UPDATE with populate_existing would leave it): the object the session
    already has, brought up to date, or a new one that joins the session as if loaded."""
    values = dict(zip((name for name, _ in _FIELDS), row, strict=True))
    challenge = session.identity_map.get(_MAPPER.identity_key_from_primary_key((values["id"],)))
    if not isinstance(challenge, LoginChallenge):
        challenge = LoginChallenge(**values)
        make_transient_to_detached(challenge)  # as if loaded: no changes pending
        session.add(challenge)
        return challenge
    for name, value in values.items():
        set_committed_value(challenge, name, value)
    return challenge


def _update(session: Session, statement: Any, bound: dict[str, Any]) -> list[LoginChallenge]:
    """Run a transition's UPDATE in the session's sync side (one hop into its greenlet).

    The session writes the changes it holds first (it autoflushes before Core statements
    too), so the UPDATE sees, for example, a request id set a moment before."""
    return [_in_step(session, row) for row in session.execute(statement, bound)]


async def _transition(
    db: AsyncSession,
    realtime: Publisher,
    condition: str,
    params: dict[str, Any],
    from_status: S,
    to_status: S,
    *,
    by: str,
    reason: str | None = None,
    also: Callable[[], Awaitable[bool]] | None = None,
) -> list[LoginChallenge]:
    """Move every challenge matching the named `condition` (with `params`) from
    `from_status` to `to_status` in one conditional UPDATE; publish and return the ones
    this call won.

    `also` runs in the same transaction after the UPDATE won; if it returns False, both
    are rolled back (a code is spent only together with the login it makes)."""
    statement = _statement(condition, from_status, to_status)
    bound = {**params, "at": utcnow(), "by": by, "why": reason}
    won = await db.run_sync(_update, statement, bound)
    if not won:
        await db.commit()  # ends the no-op transaction without expiring loaded objects
        return []
    if also is not None and not await also():
        await db.rollback()
        return []
    for challenge in won:
        if to_status == S.CONSUMED and from_status == S.PENDING:
            audit.record(
                db,
                f"push.{S.APPROVED.value}",
                challenge.user_id,
                origin=(challenge.ip, challenge.user_agent),
                challenge=challenge.public_id[:8],
                by=by,
            )
        audit.record(
            db,
            f"push.{to_status.value}",
            challenge.user_id,
            origin=(challenge.ip, challenge.user_agent),
            challenge=challenge.public_id[:8],
            by=by,
            **({"reason": reason} if reason else {}),
        )
    await db.commit()
    for challenge in won:
        await realtime.publish_challenge(challenge.public_id, event_payload(challenge))
    listener = _end_listeners.get(realtime)
    if listener is not None and from_status == S.PENDING:
        await listener(won, to_status, by)
    return won


async def decide(
    db: AsyncSession,
    realtime: Publisher,
    challenge_id: int,
    status: S,
    *,
    by: str,
    reason: str | None = None,
) -> LoginChallenge | None:
    """The phone's answer (via webhook or poll). An approval that arrives after expiry
    expires the challenge instead. Returns the challenge if this call changed it."""
    if status not in DECISIONS:
        raise ValueError(f"not a decision: {status}")
    params = {"b_id": challenge_id, "now": utcnow()}
    won = await _transition(db, realtime, "live", params, S.PENDING, status, by=by, reason=reason)
    if won:
        return won[0]
    expired = await _transition(db, realtime, "late", params, S.PENDING, S.EXPIRED, by=by)
    return expired[0] if expired else None


async def decide_named(
    db: AsyncSession,
    realtime: Publisher,
    provider_uuid: str,
    authy_id: int,
    status: S,
    *,
    by: str,
    reason: str | None = None,
    pick: str | None = None,
) -> LoginChallenge | None:
    """The phone's answer to the live challenge a callback names, in one UPDATE with no
    read before it (the webhook's common case). With `pick`, an approval wins only if the
    challenge has no number to match or `pick` is it. None when nothing won: the caller
    reads the challenge and decides it with `decide` (a wrong number, a late answer, an
    answer to a decided challenge, or none that matches).

    The pick is compared by the database, not in constant time: it arrives only inside a
    callback whose signature was checked (in constant time) before, and a wrong pick
    denies the challenge, so timing could tell nobody anything they could use."""
    if status not in DECISIONS:
        raise ValueError(f"not a decision: {status}")
    params: dict[str, Any] = {
        "b_provider_uuid": provider_uuid,
        "b_authy_id": authy_id,
        "now": utcnow(),
    }
    condition = "named"
    if pick is not None and status == S.APPROVED:
        condition, params["b_pick"] = "named_and_picked", pick
    won = await _transition(
        db, realtime, condition, params, S.PENDING, status, by=by, reason=reason
    )
    return won[0] if won else None


async def cancel(
    db: AsyncSession, realtime: Publisher, challenge_id: int, *, by: str, reason: str | None = None
) -> LoginChallenge | None:
    won = await _transition(
        db,
        realtime,
        "one",
        {"b_id": challenge_id},
        S.PENDING,
        S.CANCELLED,
        by=by,
        reason=reason,
    )
    return won[0] if won else None


_EARLIEST_EXPIRY = (
    select(LoginChallenge.expires_at)
    .where(LoginChallenge.status == S.PENDING.value)
    .order_by(LoginChallenge.expires_at)
    .limit(1)
)


async def expire_due(db: AsyncSession, realtime: Publisher) -> list[LoginChallenge]:
    """Expire every pending challenge past its time (the sweep; safe in every worker).

    First a read of the earliest pending expiry (one seek in the (status, expires_at)
    index): most ticks nothing is due, and then no write transaction is opened, so the
    sweep never queues for SQLite's write lock behind (or ahead of) a webhook."""
    now = utcnow()
    earliest = (await db.execute(_EARLIEST_EXPIRY)).scalar_one_or_none()
    if earliest is None or earliest > now:
        await db.commit()  # ends the read transaction, keeping loaded objects usable
        return []
    return await _transition(db, realtime, "due", {"now": now}, S.PENDING, S.EXPIRED, by="sweep")


_DECIDED_SINCE = select(LoginChallenge.public_id, LoginChallenge.status).where(
    LoginChallenge.decided_at >= bindparam("since", type_=_T.decided_at.type)
)


async def decided_since(db: AsyncSession, since: datetime) -> Sequence[tuple[str, str]]:
    """(public_id, status) of every challenge decided at or after `since`: what redelivery
    checks against the sockets it holds. A range scan of the decided_at index, so its cost
    follows the decision rate, not the number of waiting pages."""
    rows = await db.execute(_DECIDED_SINCE, {"since": since})
    return [(row.public_id, row.status) for row in rows]


async def consume(
    db: AsyncSession, realtime: Publisher, public_id: str, user_id: int
) -> LoginChallenge | None:
    """approved → consumed, once: the only way an approval turns into a login."""
    now = utcnow()
    params = {
        "b_public_id": public_id,
        "b_user_id": user_id,
        "now": now,
        "grace_since": now - COMPLETE_GRACE,
    }
    won = await _transition(
        db, realtime, "completable", params, S.APPROVED, S.CONSUMED, by="browser"
    )
    return won[0] if won else None


async def answer_at_once(
    db: AsyncSession,
    realtime: Publisher,
    public_id: str,
    user_id: int,
    *,
    by: str,
    spend: Callable[[], Awaitable[bool]] | None = None,
) -> LoginChallenge | None:
    """pending → consumed in one step, for an answer given in the bound browser itself (a
    recovery code, an app code, a passkey): decided and used at once, so no "approved" event ever
    asks the waiting page to complete it a second time. `spend` (using up the code) happens
    in the same transaction: both or neither."""
    params = {"b_public_id": public_id, "b_user_id": user_id, "now": utcnow()}
    won = await _transition(
        db, realtime, "answerable", params, S.PENDING, S.CONSUMED, by=by, also=spend
    )
    return won[0] if won else None


_BY_PUBLIC_ID = select(LoginChallenge).where(LoginChallenge.public_id == _PUBLIC_ID)


async def by_public_id(db: AsyncSession, public_id: object) -> LoginChallenge | None:
    """The challenge a session names; anything but a plausible id (even of another type,
    from a tampered session) names none."""
    if not isinstance(public_id, str) or not public_id or len(public_id) > 64:
        return None
    return (await db.execute(_BY_PUBLIC_ID, {"b_public_id": public_id})).scalar_one_or_none()


_BY_PROVIDER = select(LoginChallenge).where(_NAMED_BY_CALLBACK)


async def by_provider(db: AsyncSession, provider_uuid: str, authy_id: int) -> LoginChallenge | None:
    """The challenge a callback is about: both the request uuid and the device must match."""
    params = {"b_provider_uuid": provider_uuid, "b_authy_id": authy_id}
    return (await db.execute(_BY_PROVIDER, params)).scalar_one_or_none()


def poll_backoff(first_delay: float, poll_count: int) -> timedelta | None:
    """Delay before poll number `poll_count + 1` (counting from 0 for the first): the
    POLL_STEPS schedule, then None once `poll_count` has passed its end."""
    if poll_count >= len(POLL_STEPS):
        return None
    return timedelta(seconds=first_delay * POLL_STEPS[poll_count])


def _next_poll(now: datetime, first_delay: float, done: int, limit: int) -> datetime | None:
    """When to poll again after `done` polls; None (no more polls) at the per-challenge cap."""
    if done >= limit:
        return None
    step = poll_backoff(first_delay, done)
    return None if step is None else now + step


# The poll's claim is built once too. Its SELECT has no status test: only pending
# challenges have a next_poll_at (every transition clears it), and a status test would
# steer SQLite's planner to the (status, expires_at) index, a walk over every pending
# challenge. It walks the next_poll_at index from the oldest due.
_POLL_IS_DUE = and_(_T.next_poll_at <= _NOW, _T.provider_uuid.is_not(None), _T.expires_at > _NOW)
_DUE_POLLS = (
    select(_T.id, _T.poll_count)
    .where(_POLL_IS_DUE)
    .order_by(_T.next_poll_at)
    .limit(bindparam("b_limit", type_=Integer))
)
# Whether the sweep or the poll has anything to do at `now`: for the periodic loop's one
# read per tick (each stops at the first row its index finds).
EXPIRY_DUE = exists().where(_T.status == S.PENDING.value, CONDITIONS["due"])
POLL_DUE = exists().where(_POLL_IS_DUE)
# Not a status change: it moves the next poll forward (or clears it after the last one)
# for those still pending that no other worker claimed first (`next_poll_at <= now`
# again).
_CLAIM_POLLS = (
    update(_TABLE)
    .where(
        _T.id.in_(bindparam("b_ids", expanding=True)),
        _T.status == S.PENDING.value,
        _T.next_poll_at <= _NOW,
    )
    .values(
        next_poll_at=bindparam("b_next_poll_at", type_=_T.next_poll_at.type),
        poll_count=bindparam("b_poll_count", type_=_T.poll_count.type),
    )
    .returning(*(column for _, column in _FIELDS))
)


async def claim_polls(
    db: AsyncSession, first_delay: float, limit: int = 50, per_challenge: int = len(POLL_STEPS)
) -> Sequence[LoginChallenge]:
    """Pending challenges whose safety-net poll is due, at most `limit` of them, each
    claimed by pushing its next poll time forward with a conditional UPDATE, so only one
    worker polls it. After `per_challenge` polls its next_poll_at is cleared: no more."""
    now = utcnow()
    due = (await db.execute(_DUE_POLLS, {"now": now, "b_limit": limit})).all()
    # One conditional UPDATE per backoff step (usually one or two), not one per challenge.
    by_step: dict[int, list[int]] = {}
    for challenge in due:
        by_step.setdefault(challenge.poll_count, []).append(challenge.id)
    claimed: list[LoginChallenge] = []
    for poll_count, ids in by_step.items():
        bound = {
            "b_ids": ids,
            "now": now,
            "b_next_poll_at": _next_poll(now, first_delay, poll_count + 1, per_challenge),
            "b_poll_count": poll_count + 1,
        }
        claimed.extend(await db.run_sync(_update, _CLAIM_POLLS, bound))
    await db.commit()
    return claimed


def seconds_left(challenge: LoginChallenge, now: datetime | None = None) -> int:
    remaining = (challenge.expires_at - (now or utcnow())).total_seconds()
    return max(0, int(remaining))


def seconds_since_created(challenge: LoginChallenge, now: datetime | None = None) -> float:
    return ((now or utcnow()) - challenge.created_at).total_seconds()
