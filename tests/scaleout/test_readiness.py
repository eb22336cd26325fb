"""/readyz in a scaled-out deployment: Redis is reported (without failing readiness, since
every worker shares it), and a draining process says it takes no more work."""

from __future__ import annotations

from typing import Any

from push2fa.web.app import create_app
from tests.scaleout.cluster import until


async def test_readyz_reports_redis_when_it_is_configured(
    overrides: dict[str, Any], shared_redis_url: str
):
    overrides["redis_url"] = shared_redis_url
    app = create_app(overrides)
    async with app.test_app():
        client = app.test_client()

        async def ready() -> dict[str, Any] | None:
            response = await client.get("/readyz")
            body: dict[str, Any] = await response.get_json()
            return body if response.status_code == 200 and body["status"] == "ok" else None

        body = await until(ready, 5, "the subscription to Redis")

    assert body["checks"] == {"database": True, "redis": True, "serving": True}


async def test_readyz_without_redis_does_not_mention_it(client):
    body = await (await client.get("/readyz")).get_json()

    assert "redis" not in body["checks"]


async def test_a_draining_process_is_not_ready(app, client):
    await app.extensions["push2fa"].drain()

    response = await client.get("/readyz")

    assert response.status_code == 503
    body = await response.get_json()
    assert body["status"] == "unavailable" and body["checks"]["serving"] is False
