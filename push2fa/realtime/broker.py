"""Fan-out between processes over Redis pub/sub, owned here rather than borrowed.

python-socketio's Redis manager would do the transport, but push2fa delivers every event
itself (the hub decides which sockets still lack a status), needs bounded waits and
readiness flags, and would have to override the manager's private `_publish`, `_listen`
and `_handle_emit` to get them, which breaks silently when the library changes. So the
Socket.IO server keeps its in-memory manager, and this module publishes and listens with
redis-py's public API: one JSON message per event, `{"v", "origin", "event", "room",
"data"}`, where `origin` lets a process skip what it published itself.

With several processes, events travel between them over Redis pub/sub. Pub/sub is
at-most-once: a message published while a subscriber is reconnecting, or while Redis is
down, is gone. So the broker is only the fast path; the hub's per-socket record and the
redelivery loop (from the database) cover what it loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # redis is the optional extra `redis`, needed only with PUSH2FA_REDIS_URL
    from redis.asyncio import Redis

log = logging.getLogger("push2fa.realtime")

# Redis waits are bounded so that an outage costs a request at most a second, never the
# client's default of minutes; after a failed publish the broker is left alone briefly
# instead of being retried by every event (redelivery covers the gap).
REDIS_CONNECT_TIMEOUT = 1.0
REDIS_SOCKET_TIMEOUT = 2.0
PUBLISH_PAUSE_AFTER_FAILURE = 1.0
RESUBSCRIBE_DELAY_MIN = 0.25
RESUBSCRIBE_DELAY_MAX = 2.0
# The subscriber reads in short slices (so it can be stopped), and PINGs while idle so that
# a connection that died silently (a host gone without a reset) is noticed and replaced.
LISTEN_POLL = 0.5
LISTENER_STOP_TIMEOUT = 2 * LISTEN_POLL
SUBSCRIBER_HEALTH_CHECK = 10

Deliver = Callable[[str, Any, str], Awaitable[int]]


def broker_channel(public_url: str) -> str:
    """One pub/sub channel per site. Redis channels ignore the database number, so two
    deployments sharing a Redis would otherwise hear each other's `user:<id>` events."""
    return f"push2fa:{public_url}"


def redis_client(url: str, **options: Any) -> Redis:
    """A Redis client whose every wait is bounded. It retries a command once, at once: a
    pooled connection that died with a Redis restart is replaced instead of failing the
    first command after the restart. Beyond that, callers decide what a failure means
    (skip, back off, report not ready), not the client's default backoff of seconds."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client: Redis = Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 1),
        **options,
    )
    return client


MESSAGE_VERSION = 1


class Broker:
    """Publishes this process's events to the others and hands theirs to `deliver` (the
    hub's own delivery, with its de-duplication). Each side reports whether it works:
    `publishing` and `subscribed`, read by the readiness check."""

    def __init__(self, url: str, channel: str, deliver: Deliver) -> None:
        self.redis_url = url
        self.channel = channel
        self.origin = secrets.token_hex(8)
        self._deliver = deliver
        self._publisher: Redis | None = None
        self._publish_paused_until = 0.0
        self.publishing = True
        self.subscribed = False
        self._stop = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def publish(self, event: str, data: Any, room: str) -> None:
        """Tell the other processes. A failure pauses publishing briefly and never raises:
        the database holds the state, and redelivery brings it to the pages."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._publish_paused_until:
            return
        message = {
            "v": MESSAGE_VERSION,
            "origin": self.origin,
            "event": event,
            "room": room,
            "data": data,
        }
        try:
            if self._publisher is None:
                self._publisher = redis_client(self.redis_url)
            await self._publisher.publish(self.channel, json.dumps(message))
        except Exception as exc:  # any failure: the database still has the state
            self._publish_paused_until = loop.time() + PUBLISH_PAUSE_AFTER_FAILURE
            if self.publishing:
                log.warning("Redis publish failed, continuing without fan-out: %s", exc)
            else:
                log.debug("Redis publish failed again: %r", exc)
            self.publishing = False
            return
        if not self.publishing:
            log.info("Redis publish works again")
        self.publishing = True

    async def receive(self, raw: bytes | str) -> bool:
        """One message from the channel: delivered if another process of this site sent
        an event in our shape; anything else is dropped. Returns whether it was delivered."""
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            log.debug("dropped a message that is not JSON from %s", self.channel)
            return False
        if (
            not isinstance(message, dict)
            or message.get("v") != MESSAGE_VERSION
            or message.get("origin") == self.origin
            or not isinstance(message.get("event"), str)
            or not isinstance(message.get("room"), str)
        ):
            return False
        await self._deliver(message["event"], message.get("data"), message["room"])
        return True

    def start(self) -> None:
        """Subscribe now (inside the running loop), so readiness is true before the first
        socket connects."""
        if self._listener is None:
            self._stop.clear()
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        channel = self.channel.encode()
        delay = RESUBSCRIBE_DELAY_MIN
        while not self._stop.is_set():
            client = redis_client(self.redis_url, health_check_interval=SUBSCRIBER_HEALTH_CHECK)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed = True
                delay = RESUBSCRIBE_DELAY_MIN
                log.info("subscribed to Redis channel %s", self.channel)
                # Short reads rather than one endless one: the loop notices `stop` within
                # LISTEN_POLL (cancelling a read inside redis-py is not reliable).
                while not self._stop.is_set():
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=LISTEN_POLL
                    )
                    if message and message.get("channel") == channel:
                        try:
                            await self.receive(message["data"])
                        except Exception:  # one bad delivery must not end the subscription
                            log.exception("delivering a message from Redis failed")
            except Exception as exc:
                if self.subscribed and not self._stop.is_set():
                    log.warning("Redis subscription lost, resubscribing: %s", exc)
            finally:
                self.subscribed = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
                    await client.aclose()
            with contextlib.suppress(TimeoutError):  # a pause, cut short by stop
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, RESUBSCRIBE_DELAY_MAX)

    async def ping(self) -> bool:
        """Redis answers, and this process hears the channel (both needed for fan-out).
        An answer also ends a pause after a failed publish: Redis is back."""
        try:
            if self._publisher is None:
                self._publisher = redis_client(self.redis_url)
            await self._publisher.ping()
        except Exception:
            return False
        self._publish_paused_until = 0.0
        return self.subscribed

    async def close(self) -> None:
        """Stop listening (within LISTENER_STOP_TIMEOUT) and drop the connections."""
        self._stop.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(listener), LISTENER_STOP_TIMEOUT)
            if not listener.done():
                listener.cancel()
                await asyncio.wait({listener}, timeout=LISTENER_STOP_TIMEOUT)
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()
            self._publisher = None
