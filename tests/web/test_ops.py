"""Health endpoints for load balancers (push2fa/web/ops.py)."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from tests.web.auth.mailbox import free_port


async def test_healthz_says_ok(client):
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok"}


async def test_readyz_checks_the_database(client):
    response = await client.get("/readyz")

    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] is True


@pytest.fixture
def unreachable_database(overrides: dict[str, Any]) -> dict[str, Any]:
    """A PostgreSQL URL on a port where nothing listens."""
    overrides["database_url"] = f"postgresql+asyncpg://push2fa@127.0.0.1:{free_port()}/push2fa"
    return overrides


async def test_readyz_is_503_when_the_database_is_unreachable(unreachable_database, app: Quart):
    client = app.test_client()

    ready = await client.get("/readyz")
    alive = await client.get("/healthz")

    assert ready.status_code == 503
    body = await ready.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] is False
    assert alive.status_code == 200  # the process itself is fine


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_health_endpoints_only_answer_get(client, method: str):
    for path in ("/healthz", "/readyz"):
        assert (await client.open(path, method=method)).status_code == 405, path
