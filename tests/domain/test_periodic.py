"""The periodic work under load it must not pass on: the safety-net poll stays within its
budget whatever an attacker starts, and the sweep never queues for the write lock when
nothing is due. The push service here is a real HTTP server on loopback that counts the
status polls it is sent."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select, update

from push2fa.authy.client import AuthyClient
from push2fa.domain import challenges, periodic
from push2fa.models import LoginChallenge, User, utcnow
from push2fa.services import Services


class CountingPushService:
    """Answers every status poll with "pending" and counts them, per request uuid."""

    def __init__(self) -> None:
        self.polls: dict[str, int] = {}

    async def status(self, request: web.Request) -> web.Response:
        uuid = request.match_info["uuid"]
        self.polls[uuid] = self.polls.get(uuid, 0) + 1
        return web.json_response(
            {"approval_request": {"status": "pending", "uuid": uuid}, "success": True}
        )

    @property
    def total(self) -> int:
        return sum(self.polls.values())


@pytest.fixture
def overrides(overrides):
    return overrides | {"status_poll_delay": 1.0, "status_polls_per_second": 5.0}


pytestmark = pytest.mark.usefixtures("background_stopped")


@pytest.fixture
async def push_service(svc) -> AsyncIterator[CountingPushService]:
    counter = CountingPushService()
    web_app = web.Application()
    web_app.router.add_get("/onetouch/json/approval_requests/{uuid}", counter.status)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        svc.authy = AuthyClient(
            f"http://127.0.0.1:{port}",
            "test-key",
            http,
            polls_per_second=svc.settings.status_polls_per_second,
        )
        yield counter
    await runner.cleanup()


async def seed_due(svc: Services, count: int) -> list[int]:
    """`count` pending pushes whose first poll is already due, as an attacker who knows
    one username and keeps starting logins would leave behind."""
    async with svc.db.session() as db:
        user = User(username="mallory", email="m@example.com", password_hash="x", authy_id=9)
        db.add(user)
        await db.commit()
        ids = []
        for _ in range(count):
            challenge = await challenges.create(
                db, user, challenges.Context("10.0.0.9", "UA"), ttl=120
            )
            await challenges.attach_provider(db, challenge, f"uuid-{challenge.id}", -1)
            ids.append(challenge.id)
        return ids


async def make_due_again(svc: Services) -> None:
    async with svc.db.session() as db:
        await db.execute(
            update(LoginChallenge)
            .where(LoginChallenge.next_poll_at.is_not(None))
            .values(next_poll_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()


async def test_many_pending_logins_cannot_make_the_server_flood_the_push_service(svc, push_service):
    await seed_due(svc, 40)
    started = asyncio.get_running_loop().time()
    for _ in range(10):  # a second of ticks, faster than the real loop's
        await periodic.poll_once(svc)
        await asyncio.sleep(0.1)
    elapsed = asyncio.get_running_loop().time() - started
    budget = svc.settings.status_polls_per_second
    # At most one second's worth banked plus what the elapsed time refilled.
    assert 0 < push_service.total <= budget * (1 + elapsed), push_service.polls


async def test_each_push_is_polled_at_most_the_limit(svc, push_service, overrides):
    svc.authy.poll_budget.per_second = 1000.0  # only the per-push cap is under test
    (challenge_id,) = await seed_due(svc, 1)
    for _ in range(6):
        await asyncio.sleep(0.01)
        await periodic.poll_once(svc)
        await make_due_again(svc)
    assert push_service.polls == {f"uuid-{challenge_id}": svc.settings.status_poll_limit}
    async with svc.db.session() as db:
        row = await db.get(LoginChallenge, challenge_id)
        assert row.next_poll_at is None  # out of the poll index for good


async def test_no_status_polls_while_callbacks_arrive(svc, push_service):
    await seed_due(svc, 5)
    svc.authy.poll_budget.callback_arrived()
    for _ in range(5):
        await periodic.poll_once(svc)
        await asyncio.sleep(0.1)
    assert push_service.total == 0


async def test_a_decided_challenge_leaves_the_poll_index(svc, push_service):
    (challenge_id,) = await seed_due(svc, 1)
    async with svc.db.session() as db:
        await challenges.decide(db, svc.realtime, challenge_id, challenges.S.DENIED, by="webhook")
        waiting = await db.scalar(
            select(func.count()).where(LoginChallenge.next_poll_at.is_not(None))
        )
    assert waiting == 0


async def test_sweep_with_nothing_due_does_not_wait_for_the_write_lock(svc, database_url):
    """A webhook holding SQLite's write lock must not make an idle sweep queue behind it
    (and the sweep must not hold the lock for a webhook to queue behind)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single write lock")
    await seed_due(svc, 3)  # pending, expiring in two minutes: nothing due
    path = database_url.split("///", 1)[1]
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long webhook would hold it
    try:
        async with svc.db.session() as db:
            expired = await asyncio.wait_for(challenges.expire_due(db, svc.realtime), 3.0)
    finally:
        holder.rollback()
        holder.close()
    assert expired == []
