"""The Redis fan-out between processes, on the real Redis: what one process publishes reaches
the others once, never itself, and nothing but a message in push2fa's own shape is delivered."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from push2fa.realtime.broker import MESSAGE_VERSION, Broker
from tests.scaleout.cluster import until
from tests.services import redis_url

Delivered = list[tuple[str, Any, str]]


class Process:
    """One app process's side of the channel: its broker and what it delivered."""

    def __init__(self, url: str, channel: str) -> None:
        self.delivered: Delivered = []
        self.broker = Broker(url, channel, self.deliver)

    async def deliver(self, event: str, data: Any, room: str) -> int:
        self.delivered.append((event, data, room))
        return 1


@pytest.fixture
async def site() -> AsyncIterator[tuple[Process, Process, Redis, str]]:
    """Two processes of one site, subscribed, and a raw client on the same channel."""
    url = await redis_url()
    channel = f"push2fa:test-broker-{secrets.token_hex(4)}"
    a, b = Process(url, channel), Process(url, channel)
    a.broker.start()
    b.broker.start()
    raw = Redis.from_url(url)
    await until(lambda: a.broker.subscribed and b.broker.subscribed, 5, "both subscribed")
    yield a, b, raw, channel
    await a.broker.close()
    await b.broker.close()
    await raw.aclose()


async def test_an_event_reaches_the_other_process_once_and_not_its_publisher(site):
    a, b, _, _ = site

    await a.broker.publish("challenge", {"status": "approved"}, "challenge:abc")
    await until(lambda: b.delivered, 5, "delivered to B")
    await asyncio.sleep(0.3)  # time for a duplicate or an echo to arrive, if there were one

    assert b.delivered == [("challenge", {"status": "approved"}, "challenge:abc")]
    assert a.delivered == []


async def test_messages_not_in_our_shape_are_dropped_and_the_listener_goes_on(site):
    a, b, raw, channel = site
    foreign = [
        b"not json",
        b"\xff\xfe",
        json.dumps(["challenge", "challenge:abc"]),
        json.dumps({"method": "emit", "event": "challenge", "room": "challenge:abc"}),
        json.dumps({"v": 2, "origin": "x", "event": "challenge", "room": "r", "data": {}}),
        json.dumps({"v": MESSAGE_VERSION, "origin": "x", "event": 1, "room": "r", "data": {}}),
        json.dumps({"v": MESSAGE_VERSION, "origin": "x", "event": "e", "room": ["r"]}),
        json.dumps({"v": MESSAGE_VERSION, "origin": b.broker.origin, "event": "e", "room": "r"}),
    ]
    for message in foreign:
        await raw.publish(channel, message)
    await a.broker.publish("challenge", {"status": "denied"}, "challenge:after")

    await until(lambda: b.delivered, 5, "the valid message after the foreign ones")
    assert b.delivered == [("challenge", {"status": "denied"}, "challenge:after")]
    assert b.broker.subscribed


async def test_a_delivery_that_fails_does_not_end_the_subscription(site):
    a, b, _, _ = site
    calls = 0

    async def failing_once(event: str, data: Any, room: str) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a socket went away mid-emit")
        b.delivered.append((event, data, room))
        return 1

    b.broker._deliver = failing_once
    await a.broker.publish("challenge", {"status": "approved"}, "challenge:one")
    await until(lambda: calls == 1, 5, "first delivery tried")
    await a.broker.publish("challenge", {"status": "approved"}, "challenge:two")

    await until(lambda: b.delivered, 5, "second delivery")
    assert b.delivered == [("challenge", {"status": "approved"}, "challenge:two")]


async def test_close_stops_listening_and_unsubscribes(site):
    _, b, raw, channel = site

    await b.broker.close()

    assert not b.broker.subscribed
    [(_, subscribers)] = await raw.pubsub_numsub(channel)
    assert subscribers == 1  # only A is left
