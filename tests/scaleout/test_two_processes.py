"""Two push2fa processes sharing PostgreSQL and Redis, the emulator as a third process: a
decision handled by either process reaches the browser connected to the other, a killed
process loses nothing, and 200 concurrent logins are each approved exactly once."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.scaleout.cluster import until

pytestmark = pytest.mark.slow


async def test_webhook_handled_by_b_reaches_the_socket_on_a(cluster_factory, browsers):
    cluster = await cluster_factory()
    [(username, authy_id)] = (await cluster.seed_users(1)).items()
    a, b = cluster.apps["A"], cluster.apps["B"]
    browser = browsers(a.url)
    await browser.login(username)
    await browser.connect()
    await browser.wait_status("pending")
    request = await cluster.pending_request(authy_id)

    eavesdropper = Redis.from_url(cluster.redis_url)
    heard = eavesdropper.pubsub()
    await heard.subscribe(cluster.channel())
    try:
        [(_, subscribers)] = await eavesdropper.pubsub_numsub(cluster.channel())
        assert subscribers == 3, "A, B and this test listen on the site's channel"
        started = time.perf_counter()
        assert await cluster.post_webhook(b.url, authy_id, request["uuid"], "approved") == 200
        arrived = await browser.wait_status("approved")
        published = await next_message(heard)
    finally:
        await heard.aclose()
        await eavesdropper.aclose()

    assert b'"approved"' in published, "B published the decision on the channel"
    assert b.log_count("redelivered") == 0 and a.log_count("redelivered") == 0, (
        "the event came over Redis, not from the database safety net"
    )
    resp = await browser.complete(a.url)
    assert resp.url.path != "/auth/2fa/wait", browser.last_html[:300]
    assert await cluster.count("login.succeeded") == 1
    print(f"webhook on B -> socket on A: {(arrived - started) * 1000:.1f} ms")


async def next_message(pubsub, timeout: float = 5.0) -> bytes:
    """The next message published on a subscribed channel."""
    message = await until(
        lambda: pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1),
        timeout,
        "a message on the channel",
    )
    return bytes(message["data"])


async def test_killing_the_process_holding_the_socket_moves_the_page_to_the_other(
    cluster_factory, browsers
):
    cluster = await cluster_factory()
    [(username, authy_id)] = (await cluster.seed_users(1)).items()
    cluster.balancer.prefer = "A"  # A takes every connection while it answers
    browser = browsers(cluster.public_url, reconnect=True)
    await browser.login(username)
    await browser.connect()
    await browser.wait_status("pending")
    assert cluster.balancer.routed["B"] == 0

    cluster.apps["A"].send(signal.SIGKILL)
    await cluster.apps["A"].exited(10)
    await browser.wait_connects(2)  # the client's own reconnect, which lands on B
    assert cluster.balancer.routed["B"] >= 1

    request = await cluster.pending_request(authy_id)
    assert await cluster.decide(request["uuid"]) == 200
    await browser.wait_status("approved")
    heard = browser.statuses()
    resp = await browser.complete()

    assert heard == ["pending", "pending", "approved"]  # A's state, then B's on reconnect
    assert resp.url.path != "/auth/2fa/wait", browser.last_html[:300]
    assert await cluster.count("login.succeeded") == 1


LOGINS = 200


async def test_200_concurrent_logins_over_two_processes_are_each_approved_exactly_once(
    cluster_factory, browsers
):
    cluster = await cluster_factory()
    users = await cluster.seed_users(LOGINS)
    apps = [cluster.apps["A"], cluster.apps["B"]]

    async def log_in_and_approve(n: int, username: str, authy_id: int) -> dict[str, Any]:
        browser = browsers(apps[n % 2].url)  # sockets and pages spread over both processes
        await browser.login(username)
        await browser.connect()
        await browser.wait_status("pending")
        request = await cluster.pending_request(authy_id)
        started = time.perf_counter()
        await cluster.decide(request["uuid"])  # its callback goes through the balancer
        try:
            arrived = await browser.wait_status("approved", timeout=30)
        except AssertionError:
            return {"delivered": False, "approvals": 0, "delay": None}
        resp = await browser.complete()
        return {
            "delivered": True,
            "approvals": browser.statuses().count("approved"),
            "delay": arrived - started,
            "logged_in": resp.url.path != "/auth/2fa/wait",
        }

    began = time.perf_counter()
    results = await asyncio.gather(
        *(log_in_and_approve(n, name, authy_id) for n, (name, authy_id) in enumerate(users.items()))
    )
    elapsed = time.perf_counter() - began

    delivered = sum(r["delivered"] for r in results)
    lost = LOGINS - delivered
    duplicated = sum(max(0, r["approvals"] - 1) for r in results)
    delays = sorted(r["delay"] * 1000 for r in results if r["delay"] is not None)
    p50 = statistics.median(delays) if delays else float("nan")
    p99 = delays[max(0, int(len(delays) * 0.99) - 1)] if delays else float("nan")
    webhooks = {p.name: p.log_count(r"POST /webhooks/authy 200") for p in apps}
    redelivered = sum(p.log_count("redelivered") for p in apps)
    print(
        f"\n{LOGINS} logins over 2 processes in {elapsed:.1f}s: delivered {delivered}, "
        f"lost {lost}, duplicated {duplicated}; approve->page delay p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms, max {delays[-1] if delays else float('nan'):.0f} ms; "
        f"webhooks handled {webhooks}; redelivered from the database: {redelivered}"
    )

    assert (delivered, lost, duplicated) == (LOGINS, 0, 0)
    assert all(r["logged_in"] for r in results)
    assert await cluster.count("push.approved") == LOGINS
    assert await cluster.count("push.consumed") == LOGINS
    assert await cluster.count("login.succeeded") == LOGINS
    assert min(webhooks.values()) > 0, "both processes handled callbacks"
