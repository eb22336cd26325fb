"""How a decision reaches the waiting page when several processes share the work: over
Redis when it can, from the database when the broker lost it, and once either way.

Two apps in this process play two workers: they share the database and the Redis channel
(or, for "B", a Redis that does not answer), and each serves its own sockets.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import socketio
from quart import Quart

from push2fa.domain import challenges
from push2fa.domain.login_flow import SESSION_KEY
from push2fa.domain.periodic import REDELIVERY_INTERVAL
from push2fa.models import ChallengeStatus, LoginChallenge, User
from push2fa.realtime.broker import MESSAGE_VERSION
from push2fa.realtime.hub import Realtime
from push2fa.realtime.rooms import CHALLENGE_EVENT, challenge_room
from push2fa.services import Services
from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.conftest import TEST_SECRET
from tests.scaleout.cluster import listener, until
from tests.servers import reserve_listener, serve_asgi

S = ChallengeStatus


@pytest.fixture
def dead_redis_url() -> Iterator[str]:
    """A Redis URL where nothing answers (a bound port that never listens)."""
    dead = listener()
    yield f"redis://127.0.0.1:{dead.getsockname()[1]}/0"
    dead.close()


@pytest.fixture
async def workers(tmp_path: Path, database_url: str, shared_redis_url: str):
    """Start a worker (an app under Hypercorn in this process) by name: (app, url)."""
    stack = AsyncExitStack()
    public = "http://127.0.0.1:8999"  # one site: the same channel and cookie secret

    async def start(name: str, redis_url: str | None = None) -> tuple[Quart, str]:
        app = create_app(
            {
                "testing": True,
                "secret_key": TEST_SECRET,
                "instance_path": str(tmp_path / f"instance-{name}"),
                "database_url": database_url,
                "public_url": public,
                "redis_url": redis_url or shared_redis_url,
                "status_poll_delay": 30.0,
            }
        )
        sock = reserve_listener()
        url = await stack.enter_async_context(serve_asgi(build_asgi(app), listener=sock))
        return app, url

    yield start
    await stack.aclose()


def services_of(app: Quart) -> Services:
    svc: Services = app.extensions["push2fa"]
    return svc


async def new_challenge(app: Quart) -> LoginChallenge:
    async with services_of(app).db.session() as db:
        user = User(
            username=f"u{time.monotonic_ns()}",
            email=f"{time.monotonic_ns()}@example.com",
            password_hash="x",
            authy_id=4242,
        )
        db.add(user)
        await db.commit()
        challenge = await challenges.create(db, user, challenges.Context("10.0.0.1", "UA"), 120)
        await challenges.attach_provider(db, challenge, f"uuid-{challenge.id}", 30)
        return challenge


class Page:
    """A waiting page's socket, holding the session cookie bound to a challenge."""

    def __init__(self) -> None:
        self.socket = socketio.AsyncClient(reconnection=False)
        self.statuses: list[str] = []
        self.socket.on(CHALLENGE_EVENT, self._heard)

    async def _heard(self, data: dict[str, Any]) -> None:
        self.statuses.append(data["status"])

    async def open(self, app: Quart, url: str, challenge: LoginChallenge) -> Page:
        serializer = app.session_interface.get_signing_serializer(app)
        assert serializer is not None
        cookie = serializer.dumps({SESSION_KEY: challenge.public_id})
        await self.socket.connect(
            url, headers={"Cookie": f"push2fa_session={cookie}"}, transports=["websocket"]
        )
        await until(lambda: self.statuses, 5, "the state sent on connect")
        return self

    async def close(self) -> None:
        await self.socket.disconnect()


@pytest.fixture
async def pages() -> AsyncIterator[Callable[[], Page]]:
    opened: list[Page] = []

    def open_page() -> Page:
        opened.append(Page())
        return opened[-1]

    yield open_page
    for page in opened:
        await page.close()


async def decide(app: Quart, challenge: LoginChallenge, status: S = S.APPROVED) -> None:
    svc = services_of(app)
    async with svc.db.session() as db:
        assert await challenges.decide(db, svc.realtime, challenge.id, status, by="webhook")


async def test_decision_in_one_worker_reaches_the_page_on_another_over_redis(workers, pages):
    a, a_url = await workers("A")
    b, _ = await workers("B")
    challenge = await new_challenge(a)
    page = await pages().open(a, a_url, challenge)

    started = time.monotonic()
    await decide(b, challenge)
    await until(lambda: "approved" in page.statuses, 5, "approved on the page")

    assert time.monotonic() - started < REDELIVERY_INTERVAL, "came over Redis, not redelivery"
    assert page.statuses == ["pending", "approved"]


async def test_decision_the_broker_lost_is_redelivered_from_the_database(
    workers, pages, dead_redis_url
):
    a, a_url = await workers("A")
    b, _ = await workers("B", redis_url=dead_redis_url)  # B cannot publish at all
    challenge = await new_challenge(a)
    page = await pages().open(a, a_url, challenge)

    await decide(b, challenge)
    await until(lambda: "approved" in page.statuses, 5 * REDELIVERY_INTERVAL, "redelivery")

    assert page.statuses == ["pending", "approved"]


async def test_a_status_reaches_each_socket_once_whichever_path_brings_it(workers, pages):
    a, a_url = await workers("A")
    challenge = await new_challenge(a)
    first, second = pages(), pages()  # two tabs of one browser: the same challenge
    await first.open(a, a_url, challenge)
    await second.open(a, a_url, challenge)
    svc = services_of(a)

    await decide(a, challenge)
    await until(lambda: "approved" in second.statuses, 5, "approved on both pages")
    async with svc.db.session() as db:
        row = await db.get(LoginChallenge, challenge.id)
        assert row is not None
        payload = challenges.event_payload(row)
    again_from_database = await svc.realtime.catch_up(challenge.public_id, payload)
    assert isinstance(svc.realtime, Realtime) and svc.realtime.broker is not None
    late_over_redis = {  # the same event arriving late from another process
        "v": MESSAGE_VERSION,
        "origin": "another-process",
        "event": CHALLENGE_EVENT,
        "room": challenge_room(challenge.public_id),
        "data": payload,
    }
    assert await svc.realtime.broker.receive(json.dumps(late_over_redis))

    assert again_from_database == 0
    assert first.statuses == second.statuses == ["pending", "approved"]


async def test_deciding_survives_a_redis_that_never_answers(workers, pages, dead_redis_url):
    app, url = await workers("A", redis_url=dead_redis_url)
    challenge = await new_challenge(app)
    page = await pages().open(app, url, challenge)

    started = time.monotonic()
    await decide(app, challenge)  # publishes locally, then to the dead Redis
    took = time.monotonic() - started
    await until(lambda: "approved" in page.statuses, 5, "approved on the page")
    ready = await app.test_client().get("/readyz")

    assert took < 1.0, f"deciding waited {took:.1f}s on Redis"
    assert ready.status_code == 200
    body = await ready.get_json()
    assert body["status"] == "degraded" and body["checks"]["redis"] is False
