"""The app's long-lived parts (database, HTTP client, push-service client, realtime server)
and their lifecycle: made once per app, started before serving, drained when the server
is told to stop, closed at shutdown.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import aiohttp
from quart import Quart, current_app

from push2fa.authy.client import AuthyClient
from push2fa.config import Settings
from push2fa.db import Database

log = logging.getLogger("push2fa")

BackgroundTask = Callable[["Services"], Awaitable[None]]
StartHook = Callable[["Services"], None]

# Checks /readyz reports without failing on: every worker shares the one Redis, so pulling
# them all out of the load balancer over it would turn lost fan-out (which redelivery from
# the database covers) into an outage.
DEGRADED_ONLY_CHECKS = frozenset({"redis"})
LOCK_FILE = "serving.lock"
# Idle connections to the push service are dropped before the server would drop them
# (Hypercorn's default is 5 s): reusing one the server is closing at that very moment fails
# the request with a reset, and creating an approval request is not safe to retry.
HTTP_KEEPALIVE_SECONDS = 4.0


class Publisher(Protocol):
    """Where the domain announces a state change to the pages waiting for it. The domain
    depends on this alone; push2fa.realtime.hub.Realtime is what delivers it."""

    async def publish_challenge(self, public_id: str, data: Mapping[str, Any]) -> None: ...

    async def publish_enrollment(self, user_id: int, data: Mapping[str, Any]) -> None: ...


class RealtimeServer(Publisher, Protocol):
    """What the app's lifecycle, readiness and redelivery need of the realtime hub."""

    @property
    def open_websockets(self) -> int: ...

    @property
    def websockets_opened(self) -> int: ...

    def start(self) -> None: ...

    async def drain(self) -> None: ...

    async def close(self) -> None: ...

    async def broker_ready(self) -> bool | None: ...

    def has_sockets_behind(self, public_id: str, status: str) -> bool: ...

    async def catch_up(self, public_id: str, data: Mapping[str, Any]) -> int: ...


class SingleProcessError(RuntimeError):
    """A second process tried to serve an instance that has no Redis to share events."""


@dataclass
class Services:
    settings: Settings
    db: Database
    realtime: RealtimeServer
    http: aiohttp.ClientSession | None = None
    authy: AuthyClient | None = None
    withdrawer: Any = None  # domain.withdrawal.Withdrawer with push2fa's own push service
    background: list[BackgroundTask] = field(default_factory=list)
    # Run once the push-service client exists, before the background tasks start.
    on_start: list[StartHook] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    draining: bool = False
    _lock: IO[str] | None = None

    def push_client(self) -> AuthyClient:
        if self.authy is None:
            raise RuntimeError("push service client used before the app started serving")
        return self.authy

    async def readiness(self) -> dict[str, bool]:
        """What /readyz reports: each dependency and whether it answers, and whether this
        process still takes work (false once it drains for shutdown)."""
        checks = {"database": await self.db.ping()}
        broker = await self.realtime.broker_ready()
        if broker is not None:
            checks["redis"] = broker
        checks["serving"] = not self.draining
        return checks

    async def start(self) -> None:
        if not self.settings.redis_url:
            self._lock = _claim_single_process(Path(self.settings.instance_path))
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.authy_timeout),
            connector=aiohttp.TCPConnector(keepalive_timeout=HTTP_KEEPALIVE_SECONDS),
        )
        self.authy = AuthyClient(
            self.settings.push_api_url,
            self.settings.authy_api_key,
            self.http,
            timeout=self.settings.authy_timeout,
            polls_per_second=self.settings.status_polls_per_second,
        )
        for hook in self.on_start:
            hook(self)
        self.realtime.start()
        for job in self.background:
            self.tasks.append(asyncio.create_task(_supervised(job, self), name=job.__name__))
        # Everything made at start-up lives as long as the process: move it out of the
        # collector's reach, so full collections (which pause the loop) walk less.
        gc.collect()
        gc.freeze()

    async def drain(self) -> None:
        """The server was told to stop: report not ready, and send every open socket off
        to reconnect (to another worker) while in-flight requests finish. Idempotent."""
        if not self.draining:
            log.info("draining: %s open sockets asked to reconnect elsewhere", self._open())
        self.draining = True
        await self.realtime.drain()

    def _open(self) -> int:
        return self.realtime.open_websockets

    async def stop(self) -> None:
        self.draining = True
        await self.realtime.drain()  # sockets still open when no signal drained them first
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        await self.realtime.close()
        if self.withdrawer is not None:
            await self.withdrawer.settle()
        if self.http is not None:
            await self.http.close()
        await self.db.dispose()
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


def _claim_single_process(instance: Path) -> IO[str] | None:
    """Without Redis, Socket.IO rooms live in one process's memory, so only one process
    may serve. An exclusive lock in the instance folder catches `hypercorn -w 2` and a
    second `push2fa serve` alike (the CLI also checks its --workers before starting)."""
    path = instance / LOCK_FILE
    try:
        instance.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    except OSError as exc:
        log.warning("cannot create %s (%s): not checking for a second process", path, exc)
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SingleProcessError(
            f"another push2fa process is already serving from {instance}. Without "
            "PUSH2FA_REDIS_URL only one process (one Hypercorn worker) may serve: a webhook "
            "handled by one process could not reach a browser connected to another."
        ) from None
    return handle


async def _supervised(job: BackgroundTask, services: Services) -> None:
    """Run a background loop forever; a crash is logged and the loop restarted."""
    while True:
        try:
            await job(services)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed; restarting", job.__name__)
            await asyncio.sleep(1)


def init_app(app: Quart, settings: Settings, realtime: RealtimeServer) -> Services:
    services = Services(settings=settings, db=Database(settings.database_url), realtime=realtime)
    app.extensions["push2fa"] = services

    @app.before_serving
    async def _start() -> None:
        await services.start()

    @app.after_serving
    async def _stop() -> None:
        await services.stop()

    return services


def current() -> Services:
    services: Services = current_app.extensions["push2fa"]
    return services


def settings() -> Settings:
    return current().settings
