"""Shared fixtures: a freshly migrated database per test, the app, its test client.

The schema is made by the Alembic migrations only: once per run into a template (an SQLite
file, or a PostgreSQL template database when PUSH2FA_TEST_DATABASE=postgres), which each
test then copies, so every test starts from an empty, fully migrated database quickly.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from push2fa.migrate import upgrade_url
from push2fa.web.app import create_app

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
POSTGRES_URL = os.environ.get(
    "PUSH2FA_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
USE_POSTGRES = os.environ.get("PUSH2FA_TEST_DATABASE", "sqlite") == "postgres"
# Playwright's expect() waits 5 s by default; a shared 2-core CI machine running the suite
# can take longer to render a page, and a wait is not a performance assertion.
BROWSER_WAIT_MS = 15_000

try:
    from playwright.async_api import expect as _expect
except ImportError:  # browser tests skip (or fail under PUSH2FA_REQUIRE_BROWSER) on their own
    pass
else:
    _expect.set_options(timeout=BROWSER_WAIT_MS)


def require_services() -> bool:
    return os.environ.get("PUSH2FA_REQUIRE_SERVICES") == "1"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's PUSH2FA_*/AUTHY_* settings by accident."""
    for name in list(os.environ):
        if (
            name.startswith(("PUSH2FA_", "AUTHY_"))
            and not name.startswith("PUSH2FA_TEST_")
            and (name not in {"PUSH2FA_REQUIRE_SERVICES", "PUSH2FA_REQUIRE_BROWSER"})
        ):
            monkeypatch.delenv(name, raising=False)


class DatabaseFactory:
    """Hands out empty, migrated databases by copying a template migrated once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template: str | None = None
        self.created: list[str] = []

    async def _admin(self, sql: str) -> None:
        import asyncpg

        dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def new_url(self) -> str:
        if USE_POSTGRES:
            if self.template is None:
                self.template = f"push2fa_tmpl_{uuid.uuid4().hex[:8]}"
                await self._admin(f'CREATE DATABASE "{self.template}"')
                self.created.append(self.template)
                await upgrade_url(_pg_url(self.template))
            name = f"push2fa_t_{uuid.uuid4().hex[:10]}"
            await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            self.created.append(name)
            return _pg_url(name)
        template = self.root / "template.db"
        if not template.exists():
            await upgrade_url(f"sqlite+aiosqlite:///{template}")
        target = self.root / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(template, target)
        return f"sqlite+aiosqlite:///{target}"

    async def drop_all(self) -> None:
        for name in reversed(self.created):
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_url(database: str) -> str:
    base = POSTGRES_URL.rsplit("/", 1)[0]
    return f"{base}/{database}"


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    if USE_POSTGRES:
        await factory.drop_all()


@pytest.fixture
async def database_url(databases: DatabaseFactory) -> str:
    return await databases.new_url()


@pytest.fixture
def overrides(tmp_path: Path, database_url: str) -> dict[str, Any]:
    """Settings for an app under test; tests change entries before the app is made."""
    return {
        "testing": True,
        "secret_key": TEST_SECRET,
        "instance_path": str(tmp_path / "instance"),
        "database_url": database_url,
        "bcrypt_rounds": 4,
        "log_level": "DEBUG",
    }


@pytest.fixture
async def app(overrides: dict[str, Any]) -> AsyncIterator[Quart]:
    application = create_app(overrides)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> TestClientProtocol:
    return app.test_client()


CSRF_RE = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|'
    r'type="hidden" name="csrf_token" value="([^"]+)"|'
    r'name="csrf_token" value="([^"]+)"'
)


def csrf_from(html: str) -> str:
    """The CSRF token in a rendered form page."""
    match = CSRF_RE.search(html)
    assert match, "page has no csrf_token field"
    return next(group for group in match.groups() if group)


async def get_csrf(client: TestClientProtocol, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return csrf_from(await response.get_data(as_text=True))


async def register(
    client: TestClientProtocol,
    username: str = "alice",
    email: str | None = None,
    password: str = "correct horse battery",
) -> None:
    token = await get_csrf(client, "/auth/register")
    response = await client.post(
        "/auth/register",
        form={
            "csrf_token": token,
            "username": username,
            "email": email or f"{username}@example.com",
            "password": password,
            "password2": password,
        },
    )
    assert response.status_code == 302, await response.get_data(as_text=True)


async def login(
    client: TestClientProtocol,
    login_name: str = "alice",
    password: str = "correct horse battery",
    **extra: str,
) -> Any:
    token = await get_csrf(client, "/auth/login")
    return await client.post(
        "/auth/login",
        form={"csrf_token": token, "login": login_name, "password": password, **extra},
    )
