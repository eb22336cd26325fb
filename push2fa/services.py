"""The app's long-lived parts (database, HTTP client, push-service client, realtime server)
and their lifecycle: made once per app, started before serving, closed at shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from quart import Quart, current_app

from push2fa.authy.client import AuthyClient
from push2fa.config import Settings
from push2fa.db import Database
from push2fa.realtime import Realtime

log = logging.getLogger("push2fa")

BackgroundTask = Callable[["Services"], Awaitable[None]]


@dataclass
class Services:
    settings: Settings
    db: Database
    realtime: Realtime
    http: aiohttp.ClientSession | None = None
    authy: AuthyClient | None = None
    background: list[BackgroundTask] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def push_client(self) -> AuthyClient:
        if self.authy is None:
            raise RuntimeError("push service client used before the app started serving")
        return self.authy

    async def readiness(self) -> dict[str, bool]:
        """What /readyz reports: each dependency and whether it answers."""
        return {"database": await self.db.ping()}

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.authy_timeout)
        )
        self.authy = AuthyClient(
            self.settings.push_api_url,
            self.settings.authy_api_key,
            self.http,
            timeout=self.settings.authy_timeout,
        )
        for job in self.background:
            self.tasks.append(asyncio.create_task(_supervised(job, self), name=job.__name__))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        if self.http is not None:
            await self.http.close()
        await self.db.dispose()


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


def init_app(app: Quart, settings: Settings) -> Services:
    services = Services(
        settings=settings, db=Database(settings.database_url), realtime=Realtime(settings)
    )
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
