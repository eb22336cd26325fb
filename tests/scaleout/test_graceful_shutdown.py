"""SIGTERM with sockets open: requests in flight finish, every open socket is told to
reconnect (and lands on the other process), and the process exits within Hypercorn's
graceful_timeout instead of waiting it out for sockets that never end by themselves."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import tomllib

import pytest

from push2fa.authy import signature
from push2fa.config import PROJECT_ROOT
from tests.scaleout.cluster import (
    API_KEY,
    HOST,
    Cluster,
    Process,
    callback_body,
    spawn,
    until,
    wait_ready,
)

pytestmark = pytest.mark.slow

GRACEFUL_TIMEOUT = tomllib.loads((PROJECT_ROOT / "hypercorn.toml").read_text())["graceful_timeout"]


class HalfSentWebhook:
    """A signed callback whose body is only half sent: a request in flight."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rest: bytes):
        self.reader, self.writer, self.rest = reader, writer, rest

    @classmethod
    async def open(cls, target: Process, cluster: Cluster, authy_id: int, uuid: str):
        body = json.dumps(callback_body(authy_id, uuid, "approved")).encode()
        nonce = f"{time.time():.6f}"
        url = f"{cluster.public_url}/webhooks/authy"
        sig = signature.sign(API_KEY, nonce, "POST", url, json.loads(body))
        head = (
            f"POST /webhooks/authy HTTP/1.1\r\nHost: {HOST}:{target.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Authy-Signature: {sig}\r\nX-Authy-Signature-Nonce: {nonce}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        reader, writer = await asyncio.open_connection(HOST, target.port)
        half = len(body) // 2
        writer.write(head + body[:half])
        await writer.drain()
        return cls(reader, writer, body[half:])

    async def finish(self) -> int:
        self.writer.write(self.rest)
        await self.writer.drain()
        status_line = await asyncio.wait_for(self.reader.readline(), 10)
        self.writer.close()
        return int(status_line.split()[1])


async def test_sigterm_finishes_requests_moves_sockets_and_exits_in_time(cluster_factory, browsers):
    cluster = await cluster_factory()
    [(username, authy_id)] = (await cluster.seed_users(1)).items()
    cluster.balancer.prefer = "A"
    a = cluster.apps["A"]
    browser = browsers(cluster.public_url, reconnect=True)
    await browser.login(username)
    await browser.connect()
    await browser.wait_status("pending")
    request = await cluster.pending_request(authy_id)
    in_flight = await HalfSentWebhook.open(a, cluster, authy_id, request["uuid"])
    async with cluster.http.get(f"{a.url}/healthz") as resp:  # A has read what came before
        assert resp.status == 200

    stopped = time.monotonic()
    a.send(signal.SIGTERM)
    await browser.wait_connects(2)  # the socket was closed for a restart and came back on B
    assert await in_flight.finish() == 200  # A still completes the request it had begun
    await browser.wait_status("approved")  # decided on A, heard on B
    exit_code = await a.exited(GRACEFUL_TIMEOUT + 5)
    took = time.monotonic() - stopped

    assert exit_code == 0
    assert took < GRACEFUL_TIMEOUT, f"A took {took:.1f}s to stop"
    assert a.log_count("draining: 1 open sockets") == 1
    resp = await browser.complete()
    assert resp.url.path != "/auth/2fa/wait", browser.last_html[:300]
    assert await cluster.count("login.succeeded") == 1
    print(f"SIGTERM -> exit with a socket open and a request in flight: {took:.2f}s")


async def test_serve_with_two_workers_serves_one_port_and_stops_on_sigterm(
    cluster_factory, browsers
):
    cluster = await cluster_factory(apps=())
    [(username, authy_id)] = (await cluster.seed_users(1)).items()
    served = spawn("W", ["serve", "--workers", "2"], cluster.app_env("W"), cluster.workdir)
    cluster.apps["W"] = served  # stopped (and its log shown on failure) with the cluster
    await wait_ready(cluster.http, served, "/readyz")
    await until(lambda: served.log_count("subscribed to Redis") == 2, 15, "both workers")
    browser = browsers(served.url)
    await browser.login(username)
    await browser.connect()
    request = await cluster.pending_request(authy_id)
    await cluster.post_webhook(served.url, authy_id, request["uuid"], "approved")
    await browser.wait_status("approved")

    stopped = time.monotonic()
    served.send(signal.SIGTERM)
    exit_code = await served.exited(GRACEFUL_TIMEOUT + 5)

    assert exit_code == 0
    assert time.monotonic() - stopped < GRACEFUL_TIMEOUT
    assert served.log_count("draining: ") == 2, "each worker drained"
