"""The periodic work under load it must not pass on: the safety-net poll stays within its
budget whatever an attacker starts, and the sweep never queues for the write lock when
nothing is due. The push service here is a real HTTP server on loopback that counts the
status polls it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import event, func, select, update

from push2fa.authy.client import AuthyClient
from push2fa.domain import challenges, periodic
from push2fa.models import Enrollment, LoginChallenge, User, utcnow
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


async def seed_pushes(svc: Services, count: int, first_poll_in: float) -> list[int]:
    """`count` pending pushes of one user, each first polled `first_poll_in` seconds from
    now (negative: already due)."""
    async with svc.db.session() as db:
        user = User(username="mallory", email="m@example.com", password_hash="x", authy_id=9)
        db.add(user)
        await db.commit()
        ids = []
        for _ in range(count):
            challenge = await challenges.create(
                db, user, challenges.Context("10.0.0.9", "UA"), ttl=120
            )
            await challenges.attach_provider(db, challenge, f"uuid-{challenge.id}", first_poll_in)
            ids.append(challenge.id)
        return ids


async def seed_due(svc: Services, count: int) -> list[int]:
    """`count` pending pushes whose first poll is already due, as an attacker who knows
    one username and keeps starting logins would leave behind."""
    return await seed_pushes(svc, count, first_poll_in=-1)


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


@contextlib.contextmanager
def statements_run(svc: Services) -> Iterator[list[str]]:
    """Every statement the app's engine sends the database while the block runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        seen.append(statement)

    engine = svc.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def seed_waiting(svc: Services, count: int) -> list[int]:
    """`count` pending pushes that nothing is due for yet: pages waiting on their phones."""
    return await seed_pushes(svc, count, first_poll_in=60.0)


async def test_an_idle_tick_is_one_read_however_many_pages_wait(svc, push_service):
    await seed_waiting(svc, 30)
    async with svc.db.session() as db:
        db.add(
            Enrollment(
                user_id=1,
                expires_at=utcnow() + timedelta(minutes=5),
                next_poll_at=utcnow() + timedelta(minutes=1),
            )
        )
        await db.commit()
    with statements_run(svc) as seen:
        await periodic.tick_once(svc)
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1, seen
    assert not [s for s in seen if s.lstrip().upper().startswith(("UPDATE", "INSERT"))]
    assert push_service.total == 0


async def test_the_idle_read_seeks_indexes_and_walks_no_table(svc, database_url):
    """Its cost must not grow with the pages waiting or the enrolments ever made."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's query plan")
    await seed_waiting(svc, 5)
    sql = str(periodic._DUE.compile(svc.db.engine.sync_engine))
    async with svc.db.engine.connect() as connection:
        plan = (
            await connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + sql, ("pending", "x", "x", "x", "pending", "x")
            )
        ).all()
    details = [row[-1] for row in plan]
    assert not [d for d in details if d.startswith("SCAN") and "CONSTANT ROW" not in d], details
    assert sum("USING INDEX" in d for d in details) == 3, details


async def test_a_tick_expires_what_is_due(svc, push_service):
    (challenge_id,) = await seed_waiting(svc, 1)
    async with svc.db.session() as db:
        await db.execute(
            update(LoginChallenge)
            .where(LoginChallenge.id == challenge_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()
    await periodic.tick_once(svc)
    async with svc.db.session() as db:
        assert (await db.get(LoginChallenge, challenge_id)).status == "expired"


async def test_a_tick_polls_a_push_whose_callback_is_late(svc, push_service):
    (challenge_id,) = await seed_due(svc, 1)
    await asyncio.sleep(1.1 / svc.settings.status_polls_per_second)  # a poll's budget
    await periodic.tick_once(svc)
    assert push_service.polls == {f"uuid-{challenge_id}": 1}


async def test_a_tick_asks_about_a_due_enrolment(svc, push_service):
    """The counting push service knows no registrations: asking fails and is logged, but
    the enrolment was claimed (its next ask moved on), so it was watched."""
    async with svc.db.session() as db:
        user = User(username="enrolling", email="e@example.com", password_hash="x")
        db.add(user)
        await db.flush()
        enrolment = Enrollment(
            user_id=user.id,
            expires_at=utcnow() + timedelta(minutes=5),
            next_poll_at=utcnow() - timedelta(seconds=1),
        )
        db.add(enrolment)
        await db.commit()
        enrolment_id = enrolment.id
    await periodic.tick_once(svc)
    async with svc.db.session() as db:
        watched = await db.get(Enrollment, enrolment_id)
        assert watched.poll_count == 1
        assert watched.next_poll_at > utcnow()
