"""One system under test: a fresh database, the Authy emulator and the app, each a real
Hypercorn server in its own process on 127.0.0.1, configured the way an operator would
(environment variables), plus the readings the harness takes of the app's process.

Each scenario gets a fresh stack, so one scenario's memory, rows or sockets never leak
into the next one's figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench.procs import Children, reserve_listener, url_of, wait_http_ok
from bench.seed import CookieMinter
from push2fa.config import Settings, load_settings
from push2fa.migrate import upgrade_url

SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"
API_KEY = "bench-authy-api-key-0123456789abcdef"
APP_NAME = "push2fa-bench"
APP_ID = "b3b3b3b3b3b3b3b3b3b3b3b3"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
STARTUP_TIMEOUT = 60.0


@dataclass
class StackOptions:
    workers: int = 0  # 0: one worker, serving in the server process itself
    redis_url: str = ""
    database: str = "sqlite"  # or "postgres"
    log_level: str = "info"
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    app_url: str
    emulator_url: str
    settings: Settings
    minter: CookieMinter
    server_pid: int
    emulator_pid: int
    workdir: Path
    options: StackOptions
    http: aiohttp.ClientSession

    @property
    def emulator_api(self) -> str:
        return f"{self.emulator_url}/_emulator/api"

    @property
    def webhook_url(self) -> str:
        return self.settings.webhook_url

    def server_processes(self) -> list[psutil.Process]:
        """The processes that serve requests: the server itself, or its workers."""
        root = psutil.Process(self.server_pid)
        if self.options.workers == 0:
            return [root]
        return root.children(recursive=True) or [root]

    def server_rss(self) -> int:
        return sum(p.memory_info().rss for p in self.server_processes())

    def server_cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.server_processes():
            times = proc.cpu_times()
            total += times.user + times.system
        return total

    def emulator_cpu_seconds(self) -> float:
        times = psutil.Process(self.emulator_pid).cpu_times()
        return float(times.user + times.system)

    async def bench(self, method: str, path: str) -> dict[str, Any]:
        async with self.http.request(method, f"{self.app_url}/bench/{path}") as resp:
            resp.raise_for_status()
            body: dict[str, Any] = await resp.json()
            return body

    async def probe(self, reset: bool = False) -> dict[str, Any]:
        """The stall and GC probe (bench/probe.py), as on the bare stack."""
        from bench.baseline import read_probe

        return await read_probe(self.http, self.app_url, reset)

    def loop_thread_cpu_seconds(self) -> float:
        """CPU of the event-loop thread alone (one worker: the server's main thread); the
        rest of the process is database and to_thread worker threads, and the kernel."""
        if self.options.workers != 0:
            return 0.0
        for thread in psutil.Process(self.server_pid).threads():
            if thread.id == self.server_pid:
                return float(thread.user_time + thread.system_time)
        return 0.0

    async def cpu_percent_over(self, seconds: float) -> dict[str, float]:
        """Server (and emulator) CPU use over a window, in % of one core."""
        server0, loop0, emulator0, t0 = (
            self.server_cpu_seconds(),
            self.loop_thread_cpu_seconds(),
            self.emulator_cpu_seconds(),
            time.monotonic(),
        )
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - t0
        return {
            "server": round(100 * (self.server_cpu_seconds() - server0) / elapsed, 2),
            "server_loop_thread": round(
                100 * (self.loop_thread_cpu_seconds() - loop0) / elapsed, 2
            ),
            "emulator": round(100 * (self.emulator_cpu_seconds() - emulator0) / elapsed, 2),
            "seconds": round(elapsed, 2),
        }


async def _create_postgres_database() -> tuple[str, str]:
    import asyncpg

    name = f"push2fa_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


async def _drop_postgres_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def bench_environment(
    workdir: Path, database_url: str, app_url: str, emulator_url: str, options: StackOptions
) -> dict[str, str]:
    """The app's configuration, as environment variables (what workers inherit)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PUSH2FA_", "AUTHY_"))
    }
    env.update(
        {
            "PUSH2FA_ENV": "development",
            "PUSH2FA_SECRET_KEY": SECRET_KEY,
            "PUSH2FA_INSTANCE_PATH": str(workdir / "instance"),
            "PUSH2FA_DATABASE_URL": database_url,
            "PUSH2FA_PUBLIC_URL": app_url,
            "PUSH2FA_PUSH_SERVICE": "emulator",
            "PUSH2FA_EMULATOR_URL": f"{emulator_url}/_emulator",
            "PUSH2FA_LOG_LEVEL": options.log_level,
            "PUSH2FA_REDIS_URL": options.redis_url,
            "AUTHY_PRODUCTION_API_KEY": API_KEY,
            "AUTHY_APP_NAME": APP_NAME,
            "AUTHY_APP_ID": APP_ID,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(options.extra_env)
    return env


@contextlib.asynccontextmanager
async def running_stack(
    children: Children, workdir: Path, options: StackOptions
) -> AsyncIterator[Stack]:
    workdir.mkdir(parents=True, exist_ok=True)
    pg_name = None
    if options.database == "postgres":
        pg_name, database_url = await _create_postgres_database()
    else:
        for stale in workdir.glob("push2fa.db*"):
            stale.unlink()
        database_url = f"sqlite+aiosqlite:///{workdir / 'push2fa.db'}"
    app_listener, emulator_listener = reserve_listener(), reserve_listener()
    app_url, emulator_url = url_of(app_listener), url_of(emulator_listener)
    env = bench_environment(workdir, database_url, app_url, emulator_url, options)
    settings = load_settings(environ=env)
    tag = workdir.name
    try:
        await upgrade_url(database_url)
        emulator = children.spawn(
            f"{tag}-emulator",
            "bench.emulator",
            ["--callback-url", settings.webhook_url],
            env=env,
            log_path=workdir / "emulator.log",
            listener=emulator_listener,
        )
        await wait_http_ok(
            f"{emulator_url}/_emulator/phone", emulator, STARTUP_TIMEOUT, workdir / "emulator.log"
        )
        server = children.spawn(
            f"{tag}-server",
            "bench.server",
            ["--workers", str(options.workers)],
            env=env,
            log_path=workdir / "server.log",
            listener=app_listener,
        )
        await wait_http_ok(f"{app_url}/readyz", server, STARTUP_TIMEOUT, workdir / "server.log")
        overrides = {
            "secret_key": SECRET_KEY,
            "instance_path": str(workdir / "instance"),
            "database_url": database_url,
            "public_url": app_url,
        }
        minter = CookieMinter(overrides)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            yield Stack(
                app_url=app_url,
                emulator_url=emulator_url,
                settings=settings,
                minter=minter,
                server_pid=server.pid,
                emulator_pid=emulator.pid,
                workdir=workdir,
                options=options,
                http=http,
            )
    finally:
        children.stop(f"{tag}-server")
        children.stop(f"{tag}-emulator")
        for listener in (app_listener, emulator_listener):
            with contextlib.suppress(OSError):
                listener.close()
        if pg_name is not None:
            with contextlib.suppress(Exception):
                await _drop_postgres_database(pg_name)
