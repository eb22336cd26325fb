"""The challenge state machine on real PostgreSQL, raced from two engines at once (two
processes' connection pools): every transition is won exactly once and published once.

tests/domain/test_challenges.py has the same rules on the default database; here the races run
on PostgreSQL whatever PUSH2FA_TEST_DATABASE says, with real concurrent connections.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from push2fa.cli import migrate
from push2fa.db import Database
from push2fa.domain import challenges, webhook_nonces
from push2fa.models import ChallengeStatus, LoginChallenge, User, utcnow
from tests.test_migrations import is_current

S = ChallengeStatus
CHALLENGES = 20


class Published:
    """Records what the state machine would publish (the realtime side is not the topic)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def publish_challenge(self, public_id: str, data: dict[str, Any]) -> None:
        self.events.append((public_id, dict(data)))


@pytest.fixture
async def engines(pg_url: str) -> AsyncIterator[tuple[Database, Database]]:
    first, second = Database(pg_url), Database(pg_url)
    yield first, second
    await first.dispose()
    await second.dispose()


@pytest.fixture
async def pending(engines) -> list[LoginChallenge]:
    """CHALLENGES pending challenges with their pushes sent and their status polls due."""
    db_a, _ = engines
    made = []
    async with db_a.session() as db:
        user = User(username="pat", email="pat@example.com", password_hash="x", authy_id=99)
        db.add(user)
        await db.commit()
        for n in range(CHALLENGES):
            challenge = await challenges.create(db, user, challenges.Context("10.0.0.1", "UA"), 120)
            await challenges.attach_provider(db, challenge, f"uuid-{n}", 0)  # poll due now
            made.append(challenge)
    return made


async def _in_session(database: Database, work) -> Any:
    async with database.session() as db:
        return await work(db)


async def test_racing_deciders_in_two_processes_leave_one_winner_each(engines, pending):
    published: Any = Published()

    def contenders(challenge: LoginChallenge):
        yield lambda db: challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
        yield lambda db: challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")
        yield lambda db: challenges.decide(db, published, challenge.id, S.DENIED, by="poll")
        yield lambda db: challenges.cancel(db, published, challenge.id, by="browser")

    jobs = [
        _in_session(database, work)
        for challenge in pending
        for database, work in zip(itertools.cycle(engines), contenders(challenge), strict=False)
    ]
    results = await asyncio.gather(*jobs)

    winners = Counter(row.id for row in results if row is not None)
    assert winners == Counter({c.id: 1 for c in pending})
    assert Counter(public_id for public_id, _ in published.events) == Counter(
        {c.public_id: 1 for c in pending}
    )
    async with engines[1].session() as db:
        for challenge in pending:
            row = await db.get(LoginChallenge, challenge.id)
            assert row is not None and row.status != S.PENDING


async def test_sweeps_in_two_processes_expire_each_challenge_once(engines, pending):
    published: Any = Published()
    async with engines[0].session() as db:
        await db.execute(update(LoginChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
        await db.commit()

    async def late_approval(db, challenge):
        return await challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook")

    sweeps = [
        _in_session(database, lambda db: challenges.expire_due(db, published))
        for database in engines * 3
    ]
    late = [
        _in_session(engines[n % 2], lambda db, c=c: late_approval(db, c))
        for n, c in enumerate(pending)
    ]
    await asyncio.gather(*sweeps, *late)

    assert sorted(p for p, _ in published.events) == sorted(c.public_id for c in pending)
    assert {data["status"] for _, data in published.events} == {"expired"}


async def test_an_approval_is_consumed_once_across_processes(engines, pending):
    published: Any = Published()
    challenge = pending[0]
    await _in_session(
        engines[0],
        lambda db: challenges.decide(db, published, challenge.id, S.APPROVED, by="webhook"),
    )

    results = await asyncio.gather(
        *(
            _in_session(
                database,
                lambda db: challenges.consume(
                    db, published, challenge.public_id, challenge.user_id
                ),
            )
            for database in engines * 4
        )
    )

    assert sum(r is not None for r in results) == 1


async def test_status_polls_are_claimed_by_one_process_each(engines, pending):
    async def claim(database: Database) -> list[int]:
        return [
            c.id
            for c in await _in_session(
                database, lambda db: challenges.claim_polls(db, first_delay=5)
            )
        ]

    claims = await asyncio.gather(*(claim(database) for database in engines * 3))

    claimed = Counter(itertools.chain.from_iterable(claims))
    assert claimed == Counter({c.id: 1 for c in pending})


async def test_a_replayed_callback_is_accepted_by_one_process_only(engines):
    async def remember_then_decide(db) -> bool:
        # The webhook flushes the pair and commits it with the decision.
        fresh = await webhook_nonces.remember(db, "1767225600", "sig-abc")
        if fresh:
            await db.commit()
        return fresh

    async def remember(database: Database) -> bool:
        return bool(await _in_session(database, remember_then_decide))

    accepted = await asyncio.gather(*(remember(database) for database in engines * 5))

    assert accepted.count(True) == 1


async def test_hosts_starting_together_migrate_a_new_database_once(pg_databases):
    url = await pg_databases.create()

    await asyncio.gather(*(migrate(url) for _ in range(3)))  # three `push2fa serve` at once

    database = Database(url)
    try:
        assert await is_current(database.engine)
    finally:
        await database.dispose()
