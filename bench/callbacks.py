"""Deciding challenges the way the phone does: signed OneTouch callbacks to the app's public
webhook URL, at a steady rate or flat out.

The delay the issue asks for starts when the webhook arrives, so the harness posts the
callbacks itself and takes the timestamp immediately before each request leaves (bodies
are built and signed beforehand, so signing is not on the clock). Bodies have the shape of
a real Authy callback (spec 2.2): the app parses and verifies all of it. The emulator path
(`via_emulator`) decides through the emulator's control API instead, and so also includes
the emulator's own work and its callback delivery.

All timestamps are `time.monotonic_ns()`: CLOCK_MONOTONIC, one clock for every process
on this machine, so the browser processes' receipt times subtract directly.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.seed import Waiter
from push2fa.authy import signature

REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Sent:
    """One decision: when it left, and what the app answered."""

    public_id: str
    sent_ns: int
    answered_ns: int
    http_status: int
    note: str


@dataclass(frozen=True)
class Prepared:
    public_id: str
    data: bytes
    headers: dict[str, str]


def callback_body(waiter: Waiter, app_id: str, status: str = "approved") -> dict[str, Any]:
    """A OneTouch callback as Authy sends it (spec 2.2), for this waiter's request."""
    now = int(time.time())
    return {
        "authy_id": waiter.authy_id,
        "device_uuid": waiter.authy_id * 10 + 1,
        "callback_action": "approval_request_status",
        "uuid": waiter.uuid,
        "status": status,
        "signature": base64.b64encode(os.urandom(256)).decode("ascii"),
        "approval_request": {
            "app_id": app_id,
            "expiration_timestamp": now + 600,
            "logos": None,
            "transaction": {
                "details": {"Username": f"user {waiter.user_id}", "IP address": "127.0.0.1"},
                "hidden_details": {"challenge": waiter.public_id},
                "device_details": {},
                "device_geolocation": "",
                "device_signing_time": now,
                "encrypted": False,
                "flagged": False,
                "message": "Log in to push2fa?",
                "reason": waiter.match_code,  # the number the user picked on the phone
                "requester_details": None,
                "status": status,
                "uuid": waiter.uuid,
                "created_at_time": now - 5,
                "customer_uuid": 15083,
            },
        },
        "device": {
            "city": None,
            "country": "Localhost",
            "ip": "127.0.0.1",
            "region": None,
            "registration_city": None,
            "registration_country": "Localhost",
            "registration_ip": "127.0.0.1",
            "registration_method": "push",
            "registration_region": None,
            "os_type": "android",
            "last_account_recovery_at": None,
            "id": waiter.authy_id * 10 + 1,
            "registration_date": now - 86_400,
            "last_sync_date": now,
        },
    }


def prepare(
    waiters: Sequence[Waiter], webhook_url: str, api_key: str, app_id: str
) -> list[Prepared]:
    """Build and sign every callback up front, so the clock only covers the request."""
    nonce = str(int(time.time()))
    prepared = []
    for waiter in waiters:
        body = callback_body(waiter, app_id)
        headers = {
            "Content-Type": "application/json",
            "X-Authy-Signature": signature.sign(api_key, nonce, "POST", webhook_url, body),
            "X-Authy-Signature-Nonce": nonce,
        }
        prepared.append(Prepared(waiter.public_id, json.dumps(body).encode(), headers))
    return prepared


async def _post(http: aiohttp.ClientSession, url: str, item: Prepared) -> Sent:
    sent = time.monotonic_ns()
    try:
        async with http.post(url, data=item.data, headers=item.headers) as resp:
            body = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Sent(item.public_id, sent, time.monotonic_ns(), 0, repr(exc))
    note = str(body.get("note") or body.get("reason") or "") if isinstance(body, dict) else ""
    return Sent(item.public_id, sent, time.monotonic_ns(), status, note)


async def at_steady_rate(url: str, items: Sequence[Prepared], rate: float) -> list[Sent]:
    """Open loop: item k leaves at start + k/rate whether or not earlier ones answered."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        # One warm connection first, so the first timed request does not pay for TCP setup.
        async with http.get(url.split("/webhooks/")[0] + "/healthz") as resp:
            await resp.read()
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        tasks = []
        for k, item in enumerate(items):
            delay = start + k / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(http, url, item)))
        return list(await asyncio.gather(*tasks))


async def flat_out(url: str, items: Sequence[Prepared], concurrency: int) -> list[Sent]:
    """Closed loop with `concurrency` callbacks in flight: the webhook's throughput."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=0)
    queue = list(reversed(items))
    results: list[Sent] = []
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def lane() -> None:
            while queue:
                results.append(await _post(http, url, queue.pop()))

        await asyncio.gather(*(lane() for _ in range(concurrency)))
    return results


async def via_emulator(emulator_api: str, waiters: Sequence[Waiter], rate: float) -> list[Sent]:
    """Open loop through the emulator's control API: it decides, signs and calls back."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = aiohttp.TCPConnector(limit=0)
    from bench.stack import API_KEY  # the control API takes the key in a header only

    headers = {"X-Authy-API-Key": API_KEY}
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=headers) as http:

        async def decide(waiter: Waiter) -> Sent:
            sent = time.monotonic_ns()
            try:
                async with http.post(
                    f"{emulator_api}/requests/{waiter.uuid}",
                    json={"status": "approved", "reason": waiter.match_code},
                ) as resp:
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                return Sent(waiter.public_id, sent, time.monotonic_ns(), 0, repr(exc))
            callback_status = int(body.get("callback_status") or 0)
            return Sent(waiter.public_id, sent, time.monotonic_ns(), callback_status, "emulator")

        loop = asyncio.get_running_loop()
        start = loop.time() + 0.05
        tasks = []
        for k, waiter in enumerate(waiters):
            delay = start + k / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(decide(waiter)))
        return list(await asyncio.gather(*tasks))
