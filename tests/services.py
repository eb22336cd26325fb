"""The real PostgreSQL and Redis that scale-out tests need, or a clear reason why not.

URLs come from PUSH2FA_TEST_POSTGRES_URL / PUSH2FA_TEST_REDIS_URL (defaulting to the local
servers). A service that does not answer skips the test, naming what was tried, except
under PUSH2FA_REQUIRE_SERVICES=1 (CI), where it fails: CI must not pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import NoReturn

import pytest

from tests.conftest import POSTGRES_URL, require_services

REDIS_URL = os.environ.get("PUSH2FA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CONNECT_TIMEOUT = 3.0


def unavailable(reason: str) -> NoReturn:
    if require_services():
        pytest.fail(f"{reason} (PUSH2FA_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def postgres_url() -> str:
    """The test PostgreSQL's URL, once it has answered."""
    import asyncpg

    try:
        conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=CONNECT_TIMEOUT)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        unavailable(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    await conn.close()
    return POSTGRES_URL


async def redis_url() -> str:
    """The test Redis's URL, once it has answered PING."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL, socket_connect_timeout=CONNECT_TIMEOUT)
    try:
        await client.ping()
    except Exception as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()
    return REDIS_URL


def redis_server_binary() -> str:
    """`redis-server`, for tests that start (and kill) a Redis of their own."""
    found = shutil.which("redis-server")
    if found is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    return found


class PostgresDatabases:
    """Creates fresh, empty databases on the test server and drops them afterwards."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(asyncpg_dsn(self.server_url), timeout=CONNECT_TIMEOUT)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self, label: str = "scale") -> str:
        name = f"push2fa_{label}_{uuid.uuid4().hex[:10]}"
        await self._admin(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{self.server_url.rsplit('/', 1)[0]}/{name}"

    async def drop_all(self) -> None:
        for name in reversed(self.created):
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()
