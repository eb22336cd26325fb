"""Fixtures for passkeys: the real app under Hypercorn, browsed at ``http://localhost:PORT``
(WebAuthn refuses IP addresses), and Chromium's CDP virtual authenticator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select

from push2fa.models import AuditEvent, LoginChallenge, Passkey, User
from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.browser.conftest import (  # noqa: F401  (fixtures re-exported for this folder)
    PageWatch,
    chromium,
    open_page,
    page_watch,
    screenshot,
)
from tests.conftest import TEST_SECRET
from tests.pushservice.approver.conftest import (  # noqa: F401
    VirtualAuthenticator,
    blank_origin,
    localhost,
)
from tests.servers import reserve_listener, serve_asgi, url_of

# Fixtures and helpers this folder's tests import from here.
__all__ = [
    "PageWatch",
    "VirtualAuthenticator",
    "blank_origin",
    "chromium",
    "localhost",
    "open_page",
    "page_watch",
    "screenshot",
]


@dataclass
class Site:
    """The app as a user reaches it (``url`` on localhost) and its database for checks."""

    url: str
    app: Quart
    instance: Path

    async def rows(self, model: Any) -> list[Any]:
        async with self.app.extensions["push2fa"].db.session() as db:
            return list((await db.execute(select(model).order_by(model.id))).scalars())

    async def passkeys(self) -> list[tuple[Any, ...]]:
        """Every passkey row as plain values, to compare before and after an attack."""
        return [
            (p.id, p.user_id, p.credential_id, p.sign_count, p.name, p.last_used_at)
            for p in await self.rows(Passkey)
        ]

    async def challenges(self) -> list[tuple[Any, ...]]:
        return [(c.id, c.status, c.decided_by) for c in await self.rows(LoginChallenge)]

    async def user(self, username: str) -> User:
        users = [u for u in await self.rows(User) if u.username == username]
        assert len(users) == 1
        user: User = users[0]
        return user

    async def events(self, name: str) -> list[AuditEvent]:
        return [e for e in await self.rows(AuditEvent) if e.event == name]


@pytest.fixture
def site_settings() -> dict[str, Any]:
    """Settings a test changes for its site (override this fixture in the test module)."""
    return {}


@pytest.fixture
async def site(
    tmp_path: Path, database_url: str, site_settings: dict[str, Any]
) -> AsyncIterator[Site]:
    listener = reserve_listener()
    url = localhost(url_of(listener))
    instance = tmp_path / "instance"
    app = create_app(
        {
            "secret_key": TEST_SECRET,
            "instance_path": str(instance),
            "database_url": database_url,
            "bcrypt_rounds": 4,
            "public_url": url,  # by name: WebAuthn and the Approver refuse IP addresses
            "rate_limits": False,
            **site_settings,
        }
    )
    async with serve_asgi(build_asgi(app), listener=listener):
        yield Site(url, app, instance)
