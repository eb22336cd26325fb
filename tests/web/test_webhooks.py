"""Attacks on the webhook's storage: forged callbacks cannot fill the database.

Anyone can POST to /webhooks/authy. Each rejection used to add an audit row, unthrottled
and kept for ever; now a few per source and per minute are written and the rest counted
in one log line. Over a real server with one trusted proxy hop, so that the attacker can
also pose as a thousand different sources.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from quart import Quart

from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from push2fa.web.write_budget import REJECTED_WEBHOOKS_OVERALL, REJECTED_WEBHOOKS_PER_SOURCE
from tests.servers import reserve_listener, serve_asgi, url_of
from tests.web.auth.rows import audit_events

FORGED = 1000


@pytest.fixture
async def served(overrides: dict[str, Any]) -> AsyncIterator[tuple[str, Quart]]:
    listener = reserve_listener()
    url = url_of(listener)
    app = create_app({**overrides, "public_url": url, "trusted_proxies": 1, "log_level": "INFO"})
    async with serve_asgi(build_asgi(app), listener=listener):
        yield url, app


async def forge(url: str, count: int, source: Any) -> list[int]:
    """`count` callbacks with a made-up signature, from `source(n)` (an X-Forwarded-For)."""
    connector = aiohttp.TCPConnector(limit=20)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(n: int) -> int:
            headers = {
                "X-Authy-Signature": "Zm9yZ2Vk",
                "X-Authy-Signature-Nonce": "1700000000",
                "X-Forwarded-For": source(n),
            }
            body = {"authy_id": 1, "uuid": f"u-{n}", "status": "approved"}
            async with http.post(f"{url}/webhooks/authy", json=body, headers=headers) as resp:
                return resp.status

        return list(await asyncio.gather(*(one(n) for n in range(count))))


async def test_a_thousand_forged_webhooks_from_one_source_store_a_few_rows(
    served: tuple[str, Quart], caplog: pytest.LogCaptureFixture
):
    url, app = served

    with caplog.at_level(logging.WARNING, logger="push2fa"):
        statuses = await forge(url, FORGED, lambda n: "203.0.113.7")

    assert set(statuses) == {401}  # every one refused, whatever was written
    rows = await audit_events(app, "webhook.rejected")
    assert len(rows) == REJECTED_WEBHOOKS_PER_SOURCE
    assert {row.ip for row in rows} == {"203.0.113.7"}
    lines = [r for r in caplog.records if r.getMessage().startswith("webhook rejected")]
    assert len(lines) == REJECTED_WEBHOOKS_PER_SOURCE  # the log is bounded too
    assert any("counting the rest" in r.getMessage() for r in caplog.records)


async def test_a_thousand_forged_webhooks_from_a_thousand_sources_store_a_bounded_number(
    served: tuple[str, Quart],
):
    url, app = served

    statuses = await forge(url, FORGED, lambda n: f"198.51.{n // 250}.{n % 250}")

    assert set(statuses) == {401}
    assert len(await audit_events(app, "webhook.rejected")) == REJECTED_WEBHOOKS_OVERALL
