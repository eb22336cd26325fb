"""Redis stopped and restarted under two running processes: approvals still complete
(from the database: redelivery to waiting pages, the server-side poll), the webhook never
fails, /readyz says so, and fan-out resumes by itself when Redis is back."""

from __future__ import annotations

import time
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.scaleout.cluster import listener, until, url_of
from tests.scaleout.test_two_processes import next_message

pytestmark = pytest.mark.slow


async def readiness(cluster, process) -> tuple[int, dict[str, Any]]:
    async with cluster.http.get(f"{process.url}/readyz") as resp:
        return resp.status, await resp.json()


async def test_approvals_complete_while_redis_is_down_and_fan_out_recovers(
    private_redis, cluster_factory, browsers
):
    closed = listener()  # the push service's callbacks fail: only the poll can find answers
    cluster = await cluster_factory(
        redis=private_redis.url,
        callback_url=f"{url_of(closed)}/webhooks/authy",
        settings={"PUSH2FA_STATUS_POLL_DELAY": "0.5"},
    )
    (by_webhook, webhook_device), (by_poll, poll_device), (after, after_device) = (
        await cluster.seed_users(3)
    ).items()
    a, b = cluster.apps["A"], cluster.apps["B"]

    await private_redis.kill()

    async def degraded(process) -> bool:
        status, body = await readiness(cluster, process)
        return status == 200 and body["status"] == "degraded" and body["checks"]["redis"] is False

    await until(lambda: degraded(a), 10, "A to report Redis down")
    await until(lambda: degraded(b), 10, "B to report Redis down")

    # A webhook on B for a page on A: B cannot publish; A finds the decision in the database.
    page = browsers(a.url)
    await page.login(by_webhook)
    await page.connect()
    await page.wait_status("pending")
    request = await cluster.pending_request(webhook_device)
    started = time.perf_counter()
    assert await cluster.post_webhook(b.url, webhook_device, request["uuid"], "approved") == 200
    webhook_took = time.perf_counter() - started
    await page.wait_status("approved")
    assert (await page.complete(a.url)).url.path != "/auth/2fa/wait"

    # No callback at all: the server-side poll (in whichever process claims it) finds it.
    polled = browsers(b.url)
    await polled.login(by_poll)
    await polled.connect()
    await polled.wait_status("pending")
    request = await cluster.pending_request(poll_device)
    assert await cluster.decide(request["uuid"]) is None
    await polled.wait_status("approved")
    assert (await polled.complete(b.url)).url.path != "/auth/2fa/wait"

    assert webhook_took < 2.0, f"the webhook waited {webhook_took:.1f}s on the dead Redis"
    assert a.log_count("redelivered approved") >= 1

    await private_redis.start()  # same port, empty: a cache-only Redis after a restart
    for process in (a, b):
        await until(
            lambda p=process: _ready_ok(cluster, p), 15, f"{process.name} to report Redis back"
        )
    listener_check = Redis.from_url(private_redis.url)
    heard = listener_check.pubsub()
    await heard.subscribe(cluster.channel())
    try:
        [(_, subscribers)] = await listener_check.pubsub_numsub(cluster.channel())
        assert subscribers == 3, "A and B subscribed again by themselves (and this test)"
        page = browsers(a.url)
        await page.login(after)
        await page.connect()
        await page.wait_status("pending")
        request = await cluster.pending_request(after_device)
        redelivered_before = a.log_count("redelivered")
        assert await cluster.post_webhook(b.url, after_device, request["uuid"], "approved") == 200
        await page.wait_status("approved")
        assert b'"approved"' in await next_message(heard)
    finally:
        await heard.aclose()
        await listener_check.aclose()
        closed.close()

    assert a.log_count("redelivered") == redelivered_before, "fan-out over Redis again"
    assert await cluster.count("login.succeeded") == 2
    print(f"webhook answered in {webhook_took * 1000:.0f} ms with Redis down")


async def _ready_ok(cluster, process) -> bool:
    status, body = await readiness(cluster, process)
    return status == 200 and body["status"] == "ok" and body["checks"]["redis"] is True
