"""Fan-out between processes: Socket.IO's Redis manager, rewritten for outages.

With several processes, events travel between them over Redis pub/sub. Pub/sub is
at-most-once: a message published while a subscriber is reconnecting, or while Redis is
down, is gone. So the broker is only the fast path; the hub's per-socket record and the
redelivery loop (from the database) cover what it loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import socketio

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


class Broker(socketio.AsyncRedisManager):
    """`AsyncRedisManager` with its two backend hooks (`_publish`, `_listen`) rewritten
    for outages: bounded waits, no retry storm, a resubscribe delay capped at seconds
    (the stock one doubles to a minute), and flags that say whether each side works.

    Events published by this process are delivered to its own sockets by `Realtime`
    itself; an event from another process is handed to `deliver` (same de-duplication).
    """

    name = "push2fa-redis"

    def __init__(self, url: str, channel: str, deliver: Deliver) -> None:
        super().__init__(url, channel=channel)
        self._deliver = deliver
        self._publisher: Redis | None = None
        self._publish_paused_until = 0.0
        self.publishing = True
        self.subscribed = False
        self._stop = asyncio.Event()
        self.stopped = asyncio.Event()

    async def publish_emit(self, event: str, data: Any, room: str) -> None:
        """Tell the other processes; the message has AsyncPubSubManager's own shape."""
        await self._publish(
            {
                "method": "emit",
                "event": event,
                "data": [data],
                "binary": False,
                "namespace": "/",
                "room": room,
                "skip_sid": None,
                "callback": None,
                "host_id": self.host_id,
            }
        )

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        payload = data[0] if isinstance(data, list) and len(data) == 1 else data
        room = message.get("room")
        if message.get("namespace", "/") == "/" and isinstance(room, str):
            await self._deliver(str(message.get("event")), payload, room)
        else:  # not one of ours (a stock emitter on the channel): the library's own way
            await super()._handle_emit(message)

    async def _publish(self, data: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._publish_paused_until:
            return
        try:
            if self._publisher is None:
                self._publisher = redis_client(self.redis_url)
            await self._publisher.publish(self.channel, self.json.dumps(data))
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

    async def _listen(self) -> AsyncIterator[bytes]:
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
                # Short reads rather than one endless one: the loop notices `stop_listening`
                # within LISTEN_POLL (cancelling a read inside redis-py is not reliable).
                while not self._stop.is_set():
                    message = await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=LISTEN_POLL
                    )
                    if message and message.get("channel") == channel:
                        yield message["data"]
            except Exception as exc:
                if self.subscribed and not self._stop.is_set():
                    log.warning("Redis subscription lost, resubscribing: %s", exc)
            finally:
                self.subscribed = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                    await client.aclose()
            with contextlib.suppress(TimeoutError):  # a pause, cut short by stop_listening
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, RESUBSCRIBE_DELAY_MAX)
        # Park until the listener task is cancelled: returning would make python-socketio
        # log "pubsub listen() exited unexpectedly" at every clean shutdown.
        self.stopped.set()
        await asyncio.Event().wait()

    def stop_listening(self) -> None:
        self._stop.set()

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
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()
            self._publisher = None
