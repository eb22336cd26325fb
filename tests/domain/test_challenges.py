"""The login-challenge state machine: every transition wins once, whoever races for it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from push2fa.domain import challenges, recovery_codes
from push2fa.models import (
    AuditEvent,
    ChallengePurpose,
    ChallengeStatus,
    LoginChallenge,
    User,
    utcnow,
)
from tests.domain.rows import events, set_challenge, stored_challenge

S = ChallengeStatus


class Recorder:
    """Stands in for nothing: wraps the real Realtime and records what it published."""

    def __init__(self, realtime):
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._inner = realtime

    async def publish_challenge(self, public_id, data):
        self.events.append((public_id, dict(data)))
        await self._inner.publish_challenge(public_id, data)


pytestmark = pytest.mark.usefixtures("background_stopped")


@pytest.fixture
def published(svc) -> Recorder:
    return Recorder(svc.realtime)


@pytest.fixture
async def user(svc) -> User:
    async with svc.db.session() as db:
        person = User(username="carol", email="carol@example.com", password_hash="x", authy_id=77)
        db.add(person)
        await db.commit()
        return person


async def new_challenge(svc, user, ttl=120) -> LoginChallenge:
    async with svc.db.session() as db:
        challenge = await challenges.create(db, user, challenges.Context("10.0.0.1", "UA"), ttl)
        await challenges.attach_provider(db, challenge, f"uuid-{challenge.id}", 3)
        return challenge


async def status_of(svc, challenge) -> str:
    async with svc.db.session() as db:
        row = await db.get(LoginChallenge, challenge.id)
        status: str = row.status
        return status


async def test_new_challenge_is_pending_with_unguessable_public_id(svc, user):
    challenge = await new_challenge(svc, user)
    assert challenge.status == S.PENDING
    assert len(challenge.public_id) == 43  # 256 bits, URL-safe base64
    assert challenge.public_id != str(challenge.id)
    assert challenge.expires_at - challenge.created_at == timedelta(seconds=120)


async def test_duplicate_decisions_change_state_and_publish_once(svc, user, published):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        first = await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
        second = await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
        third = await challenges.decide(db, published, challenge.id, S.DENIED, by="poll")
    assert first is not None and first.status == S.APPROVED
    assert second is None and third is None
    assert [e[1]["status"] for e in published.events] == ["approved"]
    assert await status_of(svc, challenge) == S.APPROVED


async def test_concurrent_deciders_have_exactly_one_winner(svc, user, published):
    challenge = await new_challenge(svc, user)

    async def decide(status, by):
        async with svc.db.session() as db:
            return await challenges.decide(db, published, challenge.id, status, by=by)

    async def cancel():
        async with svc.db.session() as db:
            return await challenges.cancel(db, published, challenge.id, by="browser")

    results = await asyncio.gather(
        *(decide(S.APPROVED, "webhook") for _ in range(5)),
        decide(S.DENIED, "poll"),
        cancel(),
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert len(published.events) == 1
    assert await status_of(svc, challenge) == published.events[0][1]["status"]


async def test_late_approval_expires_instead(svc, user, published):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        await db.execute(
            update(LoginChallenge)
            .where(LoginChallenge.id == challenge.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()
        result = await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
    assert result is not None and result.status == S.EXPIRED
    assert await status_of(svc, challenge) == S.EXPIRED


async def test_out_of_order_callbacks_first_answer_stands(svc, user, published):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        await challenges.decide(db, published, challenge.id, S.DENIED, by="webhook")
        assert (
            await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook") is None
        )
    assert await status_of(svc, challenge) == S.DENIED


async def test_sweep_expires_only_due_challenges(svc, user, published):
    fresh = await new_challenge(svc, user)  # made first: the sweep must not look only at it
    due = await new_challenge(svc, user)
    async with svc.db.session() as db:
        await db.execute(
            update(LoginChallenge)
            .where(LoginChallenge.id == due.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()
        expired = await challenges.expire_due(db, published)
        again = await challenges.expire_due(db, published)
    assert [c.id for c in expired] == [due.id]
    assert again == []
    assert await status_of(svc, fresh) == S.PENDING


async def test_consume_only_an_approved_challenge_and_only_once(svc, user, published):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        assert await challenges.consume(db, published, challenge.public_id, user.id) is None
        await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
        results = await asyncio.gather(
            *(_consume(svc, published, challenge.public_id, user.id) for _ in range(4))
        )
    assert sum(r is not None for r in results) == 1
    assert await status_of(svc, challenge) == S.CONSUMED


async def _consume(svc, published, public_id, user_id):
    async with svc.db.session() as db:
        return await challenges.consume(db, published, public_id, user_id)


async def test_consume_refuses_another_users_challenge(svc, user, published):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
        assert await challenges.consume(db, published, challenge.public_id, user.id + 1) is None
    assert await status_of(svc, challenge) == S.APPROVED


async def test_denied_cancelled_and_expired_can_never_be_consumed(svc, user, published):
    for final in (S.DENIED, S.CANCELLED, S.EXPIRED):
        challenge = await new_challenge(svc, user)
        async with svc.db.session() as db:
            if final == S.CANCELLED:
                await challenges.cancel(db, published, challenge.id, by="browser")
            elif final == S.EXPIRED:
                await db.execute(
                    update(LoginChallenge)
                    .where(LoginChallenge.id == challenge.id)
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                )
                await db.commit()
                await challenges.expire_due(db, published)
            else:
                await challenges.decide(db, published, challenge.id, final, by="webhook")
            assert await challenges.consume(db, published, challenge.public_id, user.id) is None
        assert await status_of(svc, challenge) == final


async def test_poll_claims_each_due_challenge_once(svc, user):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        await db.execute(
            update(LoginChallenge)
            .where(LoginChallenge.id == challenge.id)
            .values(next_poll_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()

    async def claim():
        async with svc.db.session() as db:
            return [c.id for c in await challenges.claim_polls(db, first_delay=3)]

    claims = await asyncio.gather(claim(), claim(), claim())
    assert sorted(sum(claims, [])) == [challenge.id]


def test_poll_schedule_is_three_steps_then_none():
    delays = [challenges.poll_backoff(3.0, n) for n in range(5)]
    assert [d.total_seconds() for d in delays[:3] if d] == [3, 15, 60]
    assert delays[3:] == [None, None]


async def test_decide_rejects_non_decisions(svc, user, published):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        with pytest.raises(ValueError):
            await challenges.decide(db, published, challenge.id, S.CONSUMED, by="webhook")


async def test_a_passkey_answer_consumes_at_once_and_publishes_no_approval(svc, user, published):
    """No "approved" moment for the waiting page to race: pending goes to consumed once."""
    async with svc.db.session() as db:
        challenge = await challenges.create(
            db, user, challenges.Context("10.0.0.1", "UA"), 120, push=False
        )
    assert challenge.authy_id is None

    async def answer():
        async with svc.db.session() as db:
            return await challenges.answer_at_once(
                db, published, challenge.public_id, user.id, by="passkey"
            )

    results = await asyncio.gather(*(answer() for _ in range(5)))
    assert len([r for r in results if r is not None]) == 1
    assert [e[1]["status"] for e in published.events] == ["consumed"]
    async with svc.db.session() as db:
        row = await db.get(LoginChallenge, challenge.id)
        assert (row.status, row.decided_by) == (S.CONSUMED, "passkey")
        assert row.decided_at is not None and row.consumed_at is not None


async def test_a_passkey_answer_after_expiry_consumes_nothing(svc, user, published):
    challenge = await new_challenge(svc, user, ttl=120)
    async with svc.db.session() as db:
        await db.execute(
            update(LoginChallenge)
            .where(LoginChallenge.id == challenge.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()
        assert (
            await challenges.answer_at_once(
                db, published, challenge.public_id, user.id, by="passkey"
            )
            is None
        )
    assert await status_of(svc, challenge) == S.PENDING
    assert published.events == []


# Rules pinned one by one (they also kill mutants, see docs/mutation.md).


async def _approved(svc, user, published) -> LoginChallenge:
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
    return challenge


async def test_approved_challenge_is_not_consumable_for_ever(svc, user, published):
    challenge = await _approved(svc, user, published)
    past = utcnow() - challenges.COMPLETE_GRACE - timedelta(seconds=5)
    await set_challenge(svc, challenge, expires_at=past, decided_at=past)
    assert await _consume(svc, published, challenge.public_id, user.id) is None
    assert await status_of(svc, challenge) == S.APPROVED


async def test_approval_that_landed_just_in_time_can_still_complete(svc, user, published):
    challenge = await _approved(svc, user, published)
    now = utcnow()
    await set_challenge(svc, challenge, expires_at=now - timedelta(seconds=5), decided_at=now)
    consumed = await _consume(svc, published, challenge.public_id, user.id)
    assert consumed is not None and consumed.status == S.CONSUMED
    assert consumed.consumed_at is not None


async def test_approved_challenge_is_consumable_until_it_expires(svc, user, published):
    challenge = await _approved(svc, user, published)
    long_ago = utcnow() - timedelta(hours=1)
    await set_challenge(
        svc, challenge, decided_at=long_ago, expires_at=utcnow() + timedelta(seconds=60)
    )
    assert await _consume(svc, published, challenge.public_id, user.id) is not None


async def test_consume_needs_the_exact_public_id(svc, user, published):
    challenge = await _approved(svc, user, published)
    for wrong in (challenge.public_id[:-1], challenge.public_id + "x", ""):
        assert await _consume(svc, published, wrong, user.id) is None
    assert await status_of(svc, challenge) == S.APPROVED


async def test_consume_publishes_the_consumed_state_once(svc, user, published):
    challenge = await _approved(svc, user, published)
    await _consume(svc, published, challenge.public_id, user.id)
    await _consume(svc, published, challenge.public_id, user.id)
    assert [(pid, e["status"]) for pid, e in published.events] == [
        (challenge.public_id, "approved"),
        (challenge.public_id, "consumed"),
    ]


async def test_a_decision_records_who_when_and_why(svc, user, published):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        decided = await challenges.decide(
            db, published, challenge.id, S.DENIED, by="webhook", reason="not me"
        )
        assert decided is not None
        row = await db.get(LoginChallenge, challenge.id)
        assert row.decided_by == "webhook" and row.reason == "not me"
        assert row.decided_at is not None and row.consumed_at is None
        logged = (
            await db.execute(select(AuditEvent).where(AuditEvent.event == "push.denied"))
        ).scalar_one()
    assert logged.user_id == user.id and logged.ip == "10.0.0.1" and logged.user_agent == "UA"
    assert logged.details["by"] == "webhook" and logged.details["reason"] == "not me"
    assert published.events[-1][1]["reason"] == "not me"


async def test_cancel_ends_only_a_pending_challenge(svc, user, published):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        cancelled = await challenges.cancel(db, published, challenge.id, by="browser", reason="x")
        assert cancelled is not None and cancelled.status == S.CANCELLED
        assert cancelled.reason == "x" and cancelled.decided_by == "browser"
        again = await challenges.cancel(db, published, challenge.id, by="browser")
    assert again is None
    approved = await _approved(svc, user, published)
    async with svc.db.session() as db:
        assert await challenges.cancel(db, published, approved.id, by="browser") is None
    assert await status_of(svc, approved) == S.APPROVED


async def test_cancel_leaves_other_challenges_alone(svc, user, published):
    one, other = await new_challenge(svc, user), await new_challenge(svc, user)
    async with svc.db.session() as db:
        await challenges.cancel(db, published, one.id, by="browser")
    assert await status_of(svc, other) == S.PENDING


async def test_sweep_leaves_approved_challenges_past_expiry(svc, user, published):
    challenge = await _approved(svc, user, published)
    await set_challenge(svc, challenge, expires_at=utcnow() - timedelta(seconds=1))
    async with svc.db.session() as db:
        assert await challenges.expire_due(db, published) == []
    assert await status_of(svc, challenge) == S.APPROVED


async def test_event_payload_tells_status_and_timing_only(svc, user):
    challenge = await new_challenge(svc, user)
    payload = challenges.event_payload(challenge)
    assert payload == {
        "status": "pending",
        "expires_at": challenge.expires_at.isoformat(),
        "reason": None,
        "purpose": "login",
        "matching": False,
    }
    async with svc.db.session() as db:
        matched = await challenges.create(
            db, user, challenges.Context("10.0.0.1", "UA"), 60, match_code="42"
        )
    assert challenges.event_payload(matched)["matching"] is True


async def test_a_challenge_needs_a_push_device_and_keeps_its_context(svc, user):
    async with svc.db.session() as db:
        nobody = User(username="nodevice", email="n@example.com", password_hash="x")
        db.add(nobody)
        await db.commit()
        with pytest.raises(ValueError, match="^user has no push device$"):
            await challenges.create(db, nobody, challenges.Context("1.2.3.4", "UA"), 60)
        context = challenges.Context("9" * 100, "U" * 600, remember=True, next_path="/account")
        made = await challenges.create(db, user, context, 60)
        created = (
            await db.execute(select(AuditEvent).where(AuditEvent.event == "push.created"))
        ).scalar_one()
    assert made.ip == "9" * 64 and made.user_agent == "U" * 512
    assert made.remember is True and made.next_path == "/account"
    assert made.authy_id == user.authy_id and made.poll_count == 0
    assert created.user_id == user.id and created.details["challenge"] == made.public_id[:8]


async def test_attach_provider_sets_the_request_id_and_first_poll(svc, user):
    async with svc.db.session() as db:
        challenge = await challenges.create(db, user, challenges.Context("1.2.3.4", "UA"), 60)
        before = utcnow()
        await challenges.attach_provider(db, challenge, "uuid-attached", 7)
    async with svc.db.session() as db:
        row = await db.get(LoginChallenge, challenge.id)
    assert row.provider_uuid == "uuid-attached" and row.status == S.PENDING
    # The caller goes on with the challenge it holds: it says what was stored.
    assert (challenge.provider_uuid, challenge.next_poll_at) == ("uuid-attached", row.next_poll_at)
    assert before + timedelta(seconds=6) < row.next_poll_at < utcnow() + timedelta(seconds=8)


async def test_lookups_need_an_exact_match(svc, user):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        found = await challenges.by_public_id(db, challenge.public_id)
        assert found is not None and found.id == challenge.id
        for wrong in (None, "", "x" * 65, challenge.public_id[:-1]):
            assert await challenges.by_public_id(db, wrong) is None
        uuid = f"uuid-{challenge.id}"
        found = await challenges.by_provider(db, uuid, user.authy_id)
        assert found is not None and found.id == challenge.id
        assert await challenges.by_provider(db, uuid, user.authy_id + 1) is None
        assert await challenges.by_provider(db, uuid + "x", user.authy_id) is None


async def test_polls_are_claimed_only_for_pending_due_sent_unexpired_challenges(svc, user):
    now = utcnow()
    due = await new_challenge(svc, user)
    not_due = await new_challenge(svc, user)
    unsent = await new_challenge(svc, user)
    expired = await new_challenge(svc, user)
    decided = await new_challenge(svc, user)
    for challenge in (due, unsent, expired, decided):
        await set_challenge(svc, challenge, next_poll_at=now - timedelta(seconds=1), poll_count=1)
    await set_challenge(svc, unsent, provider_uuid=None)
    await set_challenge(svc, expired, expires_at=now - timedelta(seconds=1))
    await set_challenge(svc, decided, status=S.DENIED.value)
    await set_challenge(svc, not_due, next_poll_at=now + timedelta(seconds=30))
    async with svc.db.session() as db:
        claimed = await challenges.claim_polls(db, first_delay=1)
    assert [c.id for c in claimed] == [due.id]
    assert claimed[0].poll_count == 2
    backoff = challenges.poll_backoff(1, 2)
    next_poll_at = claimed[0].next_poll_at
    assert backoff is not None and next_poll_at is not None
    expected = utcnow() + backoff
    assert abs((next_poll_at - expected).total_seconds()) < 2


async def test_polls_are_claimed_oldest_first_up_to_the_limit(svc, user):
    now = utcnow()
    made = [await new_challenge(svc, user) for _ in range(3)]
    for age, challenge in zip((5, 30, 10), made, strict=True):
        await set_challenge(svc, challenge, next_poll_at=now - timedelta(seconds=age))
    async with svc.db.session() as db:
        claimed = await challenges.claim_polls(db, first_delay=1, limit=2)
    assert sorted(c.id for c in claimed) == sorted([made[1].id, made[2].id])


async def test_seconds_left_and_since_created(svc, user):
    challenge = await new_challenge(svc, user)
    start = challenge.created_at
    assert challenges.seconds_left(challenge, start + timedelta(seconds=19.6)) == 100
    assert challenges.seconds_left(challenge, start + timedelta(seconds=500)) == 0
    assert 0 < challenges.seconds_left(challenge) <= 120
    assert challenges.seconds_since_created(challenge, start + timedelta(seconds=2.5)) == 2.5
    assert 0 <= challenges.seconds_since_created(challenge) < 60


async def test_consume_at_the_exact_deadlines_is_refused(svc, user, published, monkeypatch):
    challenge = await _approved(svc, user, published)
    moment = utcnow().replace(microsecond=0) + timedelta(minutes=1)
    await set_challenge(
        svc, challenge, expires_at=moment, decided_at=moment - challenges.COMPLETE_GRACE
    )
    monkeypatch.setattr(challenges, "utcnow", lambda: moment)
    assert await _consume(svc, published, challenge.public_id, user.id) is None
    monkeypatch.setattr(challenges, "utcnow", lambda: moment - timedelta(seconds=1))
    assert await _consume(svc, published, challenge.public_id, user.id) is not None


async def test_consumption_is_recorded_as_the_browsers_doing(svc, user, published):
    challenge = await _approved(svc, user, published)
    await _consume(svc, published, challenge.public_id, user.id)
    async with svc.db.session() as db:
        logged = (
            await db.execute(select(AuditEvent).where(AuditEvent.event == "push.consumed"))
        ).scalar_one()
    assert logged.user_id == user.id
    assert logged.details == {"challenge": challenge.public_id[:8], "by": "browser"}


async def test_an_answer_at_the_exact_expiry_expires_the_challenge(
    svc, user, published, monkeypatch
):
    challenge = await new_challenge(svc, user)
    moment = utcnow().replace(microsecond=0) + timedelta(minutes=1)
    await set_challenge(svc, challenge, expires_at=moment)
    monkeypatch.setattr(challenges, "utcnow", lambda: moment)
    async with svc.db.session() as db:
        result = await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
    assert result is not None and result.status == S.EXPIRED


async def test_a_late_answer_expires_only_its_own_challenge(svc, user, published):
    late, other = await new_challenge(svc, user), await new_challenge(svc, user)
    for challenge in (late, other):
        await set_challenge(svc, challenge, expires_at=utcnow() - timedelta(seconds=1))
    async with svc.db.session() as db:
        await challenges.decide(db, published, late.id, S.APPROVED, by="webhook")
    assert await status_of(svc, late) == S.EXPIRED
    assert await status_of(svc, other) == S.PENDING  # left for the sweep, by="sweep"
    async with svc.db.session() as db:
        assert (await db.get(LoginChallenge, late.id)).decided_by == "webhook"


async def test_decide_says_what_it_refused(svc, user, published):
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        with pytest.raises(ValueError, match="^not a decision: "):
            await challenges.decide(db, published, challenge.id, S.CANCELLED, by="webhook")


async def test_a_challenge_keeps_the_purpose_it_was_made_for(svc, user):
    """A push to turn 2FA off must not be mistaken for (or shown as) a login push."""
    async with svc.db.session() as db:
        made = await challenges.create(
            db, user, challenges.Context("10.0.0.1", "UA"), 60, ChallengePurpose.DISABLE
        )
    async with svc.db.session() as db:
        row = await db.get(LoginChallenge, made.id)
        created = (
            await db.execute(select(AuditEvent).where(AuditEvent.event == "push.created"))
        ).scalar_one()
    assert row.purpose == "disable" and created.details["purpose"] == "disable"
    assert challenges.event_payload(row)["purpose"] == "disable"


async def test_an_answer_decides_only_its_own_challenge(svc, user, published):
    """Another login of the same account waiting at the same time stays pending."""
    mine, other = await new_challenge(svc, user), await new_challenge(svc, user)
    async with svc.db.session() as db:
        decided = await challenges.decide(db, published, mine.id, S.APPROVED, by="webhook")
    assert decided is not None and decided.id == mine.id
    assert await status_of(svc, other) == S.PENDING
    assert [pid for pid, _ in published.events] == [mine.public_id]


async def test_a_decision_on_a_challenge_already_read_publishes_the_new_state(svc, user, published):
    """The webhook reads the challenge, then decides it in the same session: the waiting
    page must be told "approved", not the "pending" the session had read."""
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        read = await challenges.by_provider(db, f"uuid-{challenge.id}", user.authy_id)
        assert read is not None and read.status == S.PENDING
        decided = await challenges.decide(db, published, read.id, S.APPROVED, by="webhook")
    assert decided is not None and decided.status == S.APPROVED
    assert [e["status"] for _, e in published.events] == ["approved"]


async def test_a_decision_brings_the_challenge_the_session_holds_up_to_date(svc, user, published):
    """The session's own object is the one returned, holding every column as stored now:
    what changed behind its back as well as what the decision changed, with nothing left
    for the session to write."""
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        held = await db.get(LoginChallenge, challenge.id)
        assert held is not None
        await set_challenge(svc, challenge, reason="changed elsewhere", poll_count=2)
        decided = await challenges.cancel(db, published, challenge.id, by="server")
        assert decided is not None and decided is held
        assert (decided.status, decided.decided_by, decided.poll_count) == (
            S.CANCELLED,
            "server",
            2,
        )
        assert decided.reason is None and decided.next_poll_at is None
        assert decided.decided_at is not None
        assert decided not in db.dirty and not db.new


async def test_a_decision_in_a_session_that_read_nothing_returns_a_loaded_challenge(
    svc, user, published
):
    """The webhook decides without reading first: the challenge it gets back is the
    session's, as if loaded (a later read of it is the same object, and committing writes
    nothing more)."""
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        decided = await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
        assert decided is not None
        assert decided in db and decided not in db.dirty and not db.new
        assert await db.get(LoginChallenge, challenge.id) is decided
        stored = await stored_challenge(svc, challenge)
        assert {c: getattr(decided, c) for c in _COLUMNS} == {
            c: getattr(stored, c) for c in _COLUMNS
        }


async def test_a_change_the_session_has_not_written_yet_is_written_before_the_decision(
    svc, user, published
):
    """A pending change to the challenge (here the push's request id, set a moment before)
    reaches the database before the UPDATE that must see it."""
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        held = await db.get(LoginChallenge, challenge.id)
        assert held is not None
        held.provider_uuid = "sent-again"
        decided = await challenges.decide_named(
            db, published, "sent-again", user.authy_id, S.APPROVED, by="webhook"
        )
    assert decided is not None and decided is held and decided.status == S.APPROVED
    stored = await stored_challenge(svc, challenge)
    assert (stored.provider_uuid, stored.status) == ("sent-again", S.APPROVED)


async def test_a_refused_answer_in_the_browser_leaves_the_held_challenge_pending(
    svc, user, published
):
    """When what must happen with the answer fails (`also`), the UPDATE is rolled back and
    the object the session held shows the stored, still pending challenge again."""
    challenge = await new_challenge(svc, user)

    async def refuse() -> bool:
        return False

    async with svc.db.session() as db:
        held = await db.get(LoginChallenge, challenge.id)
        assert held is not None
        consumed = await challenges.answer_at_once(
            db, published, challenge.public_id, user.id, by="recovery", spend=refuse
        )
        assert consumed is None
        await db.refresh(held)
        assert held.status == S.PENDING and held.consumed_at is None
    assert await status_of(svc, challenge) == S.PENDING and published.events == []


_COLUMNS = [column.key for column in LoginChallenge.__table__.columns]


async def test_consuming_keeps_who_approved_and_when(svc, user, published):
    challenge = await _approved(svc, user, published)
    async with svc.db.session() as db:
        approved = await db.get(LoginChallenge, challenge.id)
    await _consume(svc, published, challenge.public_id, user.id)
    async with svc.db.session() as db:
        row = await db.get(LoginChallenge, challenge.id)
    assert row.status == S.CONSUMED and row.consumed_at is not None
    assert (row.decided_by, row.decided_at) == ("webhook", approved.decided_at)


async def test_the_history_tells_each_step_once(svc, user, published):
    """Denied: created, denied. Approved on the phone then used: created, approved, consumed.
    Answered in the browser: created, approved (by that answer, from that browser), consumed."""
    denied = await new_challenge(svc, user)
    async with svc.db.session() as db:
        await challenges.decide(db, published, denied.id, S.DENIED, by="webhook")
    assert await events(svc, user) == ["push.created", "push.denied"]
    pushed = await _approved(svc, user, published)
    await _consume(svc, published, pushed.public_id, user.id)
    assert (await events(svc, user))[2:] == ["push.created", "push.approved", "push.consumed"]
    answered = await new_challenge(svc, user)
    async with svc.db.session() as db:
        await challenges.answer_at_once(db, published, answered.public_id, user.id, by="passkey")
        logged = (await db.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()
    assert [e.event for e in logged[5:]] == ["push.created", "push.approved", "push.consumed"]
    for entry in logged[6:]:
        assert entry.user_id == user.id and (entry.ip, entry.user_agent) == ("10.0.0.1", "UA")
        assert entry.details == {"challenge": answered.public_id[:8], "by": "passkey"}


async def test_a_recovery_code_is_spent_together_with_the_login_or_not_at_all(svc, user, published):
    async with svc.db.session() as db:
        codes = await recovery_codes.regenerate(db, svc.settings, user.id)
    challenge = await new_challenge(svc, user)

    async def answer(code: str) -> LoginChallenge | None:
        async with svc.db.session() as db:
            return await challenges.answer_at_once(
                db,
                published,
                challenge.public_id,
                user.id,
                by="recovery",
                spend=lambda: recovery_codes.spend(db, svc.settings, user.id, code),
            )

    assert await answer("wrong-guess") is None
    assert await status_of(svc, challenge) == S.PENDING and published.events == []
    consumed = await answer(codes[0])
    assert consumed is not None and consumed.status == S.CONSUMED
    async with svc.db.session() as db:
        assert await recovery_codes.remaining(db, user.id) == 9


async def test_an_answer_in_the_browser_consumes_only_the_challenge_it_names(svc, user, published):
    mine, other = await new_challenge(svc, user), await new_challenge(svc, user)
    async with svc.db.session() as db:
        consumed = await challenges.answer_at_once(
            db, published, mine.public_id, user.id, by="passkey"
        )
    assert consumed is not None and consumed.id == mine.id
    assert await status_of(svc, other) == S.PENDING


async def test_an_answer_in_the_browser_for_another_accounts_challenge_is_refused(
    svc, user, published
):
    """Someone with their own passkey or code, holding this account's challenge id."""
    challenge = await new_challenge(svc, user)
    async with svc.db.session() as db:
        assert (
            await challenges.answer_at_once(
                db, published, challenge.public_id, user.id + 1, by="passkey"
            )
            is None
        )
    assert await status_of(svc, challenge) == S.PENDING


async def test_an_answer_in_the_browser_at_the_exact_expiry_is_refused(
    svc, user, published, monkeypatch
):
    challenge = await new_challenge(svc, user)
    moment = utcnow().replace(microsecond=0) + timedelta(minutes=1)
    await set_challenge(svc, challenge, expires_at=moment)

    async def answer():
        async with svc.db.session() as db:
            return await challenges.answer_at_once(
                db, published, challenge.public_id, user.id, by="passkey"
            )

    monkeypatch.setattr(challenges, "utcnow", lambda: moment)
    assert await answer() is None
    monkeypatch.setattr(challenges, "utcnow", lambda: moment - timedelta(seconds=1))
    assert await answer() is not None


async def test_every_end_of_a_pending_challenge_is_told_once(svc, user, published):
    """What takes the push off the phone hears of each challenge leaving pending, with its
    new state and who ended it; a consumption of an approval is no new end."""
    told: list[tuple[list[int], S, str]] = []

    async def listener(ended, status, by):
        told.append(([c.id for c in ended], status, by))

    challenges.on_end(published, listener)
    approved = await _approved(svc, user, published)
    await _consume(svc, published, approved.public_id, user.id)
    cancelled = await new_challenge(svc, user)
    async with svc.db.session() as db:
        await challenges.cancel(db, published, cancelled.id, by="browser")
    assert told == [
        ([approved.id], S.APPROVED, "webhook"),
        ([cancelled.id], S.CANCELLED, "browser"),
    ]


async def test_a_tampered_session_naming_a_challenge_by_another_type_finds_none(svc, user):
    await new_challenge(svc, user)
    async with svc.db.session() as db:
        for tampered in (1, 12345, ["x"], {"id": 1}, 1.5, True):
            assert await challenges.by_public_id(db, tampered) is None, tampered


async def test_polls_stop_at_the_configured_limit(svc, user):
    challenge = await new_challenge(svc, user)
    await set_challenge(svc, challenge, next_poll_at=utcnow() - timedelta(seconds=1))
    async with svc.db.session() as db:
        claimed = await challenges.claim_polls(db, first_delay=1, per_challenge=1)
    assert [(c.id, c.poll_count, c.next_poll_at) for c in claimed] == [(challenge.id, 1, None)]


async def test_a_poll_is_claimed_when_due_and_not_once_its_challenge_expires(
    svc, user, monkeypatch
):
    moment = utcnow().replace(microsecond=0) + timedelta(minutes=1)
    due_now, expiring_now = await new_challenge(svc, user), await new_challenge(svc, user)
    await set_challenge(
        svc, due_now, next_poll_at=moment, expires_at=moment + timedelta(seconds=60)
    )
    await set_challenge(
        svc, expiring_now, next_poll_at=moment - timedelta(seconds=1), expires_at=moment
    )
    monkeypatch.setattr(challenges, "utcnow", lambda: moment)
    async with svc.db.session() as db:
        claimed = await challenges.claim_polls(db, first_delay=1)
    assert [c.id for c in claimed] == [due_now.id]


async def test_decided_challenges_never_crowd_a_due_poll_out_of_a_batch(svc, user, published):
    decided = await _approved(svc, user, published)  # no next poll any more
    due = await new_challenge(svc, user)
    await set_challenge(svc, due, next_poll_at=utcnow() - timedelta(seconds=1))
    async with svc.db.session() as db:
        claimed = await challenges.claim_polls(db, first_delay=1, limit=1)
    assert [c.id for c in claimed] == [due.id]
    assert await status_of(svc, decided) == S.APPROVED


async def test_redelivery_sees_every_challenge_decided_since_its_last_look(svc, user, published):
    """A page whose socket missed the event is told again: the decisions at or after the
    moment redelivery last looked, with their state, and nothing older or still pending."""
    old, pending = await _approved(svc, user, published), await new_challenge(svc, user)
    since = utcnow().replace(microsecond=0) + timedelta(minutes=1)
    await set_challenge(svc, old, decided_at=since - timedelta(seconds=1))
    at_once, later = await new_challenge(svc, user), await new_challenge(svc, user)
    async with svc.db.session() as db:
        await challenges.decide(db, published, at_once.id, S.DENIED, by="webhook")
        await challenges.cancel(db, published, later.id, by="browser")
    await set_challenge(svc, at_once, decided_at=since)
    await set_challenge(svc, later, decided_at=since + timedelta(seconds=5))
    async with svc.db.session() as db:
        seen = await challenges.decided_since(db, since)
    assert sorted(seen) == sorted([(at_once.public_id, "denied"), (later.public_id, "cancelled")])
    assert pending.public_id not in {public_id for public_id, _ in seen}


async def test_the_sweep_expires_a_challenge_at_its_expiry_as_the_sweeps_doing(
    svc, user, published, monkeypatch
):
    challenge = await new_challenge(svc, user)
    moment = utcnow().replace(microsecond=0) + timedelta(minutes=1)
    await set_challenge(svc, challenge, expires_at=moment)
    monkeypatch.setattr(challenges, "utcnow", lambda: moment - timedelta(seconds=1))
    async with svc.db.session() as db:
        assert await challenges.expire_due(db, published) == []
    monkeypatch.setattr(challenges, "utcnow", lambda: moment)
    async with svc.db.session() as db:
        expired = await challenges.expire_due(db, published)
    assert [(c.id, c.status, c.decided_by) for c in expired] == [(challenge.id, S.EXPIRED, "sweep")]
