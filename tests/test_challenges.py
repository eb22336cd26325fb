"""The login-challenge state machine: every transition wins once, whoever races for it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from push2fa import challenges
from push2fa.models import ChallengeStatus, LoginChallenge, User, utcnow
from push2fa.services import Services

S = ChallengeStatus


class Recorder:
    """Stands in for nothing: wraps the real Realtime and records what it published."""

    def __init__(self, realtime):
        self.events: list[tuple[str, dict]] = []
        self._inner = realtime

    async def publish_challenge(self, public_id, data):
        self.events.append((public_id, dict(data)))
        await self._inner.publish_challenge(public_id, data)


@pytest.fixture
async def svc(app) -> Services:
    """The app's services with its background loops stopped, so that only the test
    drives transitions here."""
    services: Services = app.extensions["push2fa"]
    for task in services.tasks:
        task.cancel()
    await asyncio.gather(*services.tasks, return_exceptions=True)
    services.tasks.clear()
    return services


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
        return row.status


async def test_new_challenge_is_pending_with_unguessable_public_id(svc, user):
    challenge = await new_challenge(svc, user)
    assert challenge.status == S.PENDING
    assert len(challenge.public_id) >= 43  # 256 bits, URL-safe base64
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
    due = await new_challenge(svc, user)
    fresh = await new_challenge(svc, user)
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
