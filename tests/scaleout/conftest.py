"""Scale-out fixtures: real PostgreSQL databases made and dropped per test, the shared test
Redis, a Redis of the test's own that it can kill, and multi-process clusters."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from push2fa.cli import migrate
from tests.scaleout.cluster import Browser, Cluster, listener, until
from tests.services import PostgresDatabases, postgres_url, redis_server_binary, redis_url


@pytest.fixture
async def pg_databases() -> AsyncIterator[PostgresDatabases]:
    factory = PostgresDatabases(await postgres_url())
    yield factory
    await factory.drop_all()


@pytest.fixture
async def pg_url(pg_databases: PostgresDatabases) -> str:
    """A fresh PostgreSQL database with the migrations applied."""
    url = await pg_databases.create()
    await migrate(url)
    return url


@pytest.fixture
async def shared_redis_url() -> str:
    return await redis_url()


@dataclass
class RedisServer:
    """A redis-server this test owns: no persistence, so a restart starts empty, exactly
    the outage a cache-only Redis has."""

    binary: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await until(self.answers, 10, f"redis-server on port {self.port}")

    async def answers(self) -> bool:
        client = Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            return bool(await client.ping())
        except Exception:
            return False
        finally:
            await client.aclose()

    async def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, 10)
            self.process = None


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    binary = redis_server_binary()
    sock = listener()  # a free port; redis-server cannot take a socket, so hand it back
    port = sock.getsockname()[1]
    sock.close()
    server = RedisServer(binary, port, tmp_path)
    await server.start()
    yield server
    await server.kill()


ClusterFactory = Callable[..., Awaitable[Cluster]]
CLUSTERS = pytest.StashKey[list[Cluster]]()


@pytest.fixture
async def cluster_factory(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_databases: PostgresDatabases,
    shared_redis_url: str,
) -> AsyncIterator[ClusterFactory]:
    """Start a cluster: `apps` processes sharing a new database and Redis, and the
    emulator process, behind one public URL (the balancer). Their logs are shown when
    the test fails."""
    made: list[Cluster] = []
    request.node.stash[CLUSTERS] = made
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def start(
        apps: tuple[str, ...] = ("A", "B"),
        *,
        redis: str | None = None,
        callback_url: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> Cluster:
        database_url = await pg_databases.create()
        await migrate(database_url)  # `push2fa db upgrade` once, as docs/deploy.md says
        cluster = Cluster(
            workdir=tmp_path,
            database_url=database_url,
            redis_url=redis or shared_redis_url,
            public=listener(),
            app_settings=settings or {},
            http=http,
        )
        made.append(cluster)
        await cluster.start_emulator(callback_url)
        await cluster.start_apps(*apps)
        return cluster

    yield start
    for cluster in made:
        await cluster.stop()
    await http.close()


@pytest.fixture
async def browsers() -> AsyncIterator[Callable[..., Browser]]:
    opened: list[Browser] = []

    def open_browser(url: str, *, reconnect: bool = False) -> Browser:
        browser = Browser(url, reconnect=reconnect)
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        with contextlib.suppress(Exception):
            await browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    if report.when == "call" and report.failed:
        for cluster in item.stash.get(CLUSTERS, []):
            report.sections.append(("process logs", cluster.tails()))
    return report
