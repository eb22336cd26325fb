"""The Socket.IO server: who may connect, which rooms they are in, and the one publish path.

Clients never name rooms. At connect time the server reads the browser's signed cookies
from the handshake, decides the rooms (`user:<id>` for a logged-in user, `challenge:<id>`
for the login challenge bound to this browser's session) and refuses everything else.
Right after joining, the current state is sent, so an answer that arrived while the page
was loading or reconnecting is never lost.

With several processes, events travel between them over Redis pub/sub (`Broker`). Pub/sub
is at-most-once: a message published while a subscriber is reconnecting, or while Redis is
down, is gone. So the broker is only the fast path. Every process remembers which challenge
status each of its own sockets was last sent, and `catch_up` (driven from the database by
the services' redelivery loop) sends whatever a waiting socket missed. The same record
drops an event a socket already has, so a page hears each status once, whichever path
brought it first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

import socketio
from quart import Quart

from push2fa.config import Settings

if TYPE_CHECKING:  # redis is the optional extra `redis`, needed only with PUSH2FA_REDIS_URL
    from redis.asyncio import Redis

log = logging.getLogger("push2fa.realtime")

CHALLENGE_EVENT = "challenge"
ENROLLMENT_EVENT = "enrollment"
SOCKETIO_PATH = "/socket.io/"

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
# WebSocket close codes (RFC 6455 §7.4.1, IANA registry): "service restart" for sockets
# open at shutdown, "try again later" for handshakes that arrive while draining.
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013

# Decides the rooms for a handshake and returns (rooms, initial events to send).
Authorizer = Callable[[Mapping[str, str]], Awaitable[tuple[list[str], list[tuple[str, Any]]]]]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Deliver = Callable[[str, Any, str], Awaitable[int]]


def challenge_room(public_id: str) -> str:
    return f"challenge:{public_id}"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def parse_cookies(environ: Mapping[str, Any]) -> dict[str, str]:
    raw = environ.get("HTTP_COOKIE", "")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


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


class SocketGate:
    """ASGI wrapper around the Socket.IO endpoint that can drain it: it knows every open
    WebSocket, closes them all with 1012 (service restart) so that clients reconnect to
    another worker, and turns new handshakes away while the process is shutting down."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner
        self.draining = False
        self.opened = 0  # WebSockets accepted so far (push2fa.heap reads it)
        self._open: set[Send] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        ours = scope["type"] in {"http", "websocket"} and (path + "/").startswith(SOCKETIO_PATH)
        if not ours:
            await self.inner(scope, receive, send)
        elif self.draining:
            await _refuse(scope, send)
        elif scope["type"] == "websocket":
            self.opened += 1
            self._open.add(send)
            try:
                await self.inner(scope, receive, send)
            finally:
                self._open.discard(send)
        else:
            await self.inner(scope, receive, send)

    @property
    def open_websockets(self) -> int:
        return len(self._open)

    async def close_all(self) -> None:
        self.draining = True
        for send in list(self._open):
            with contextlib.suppress(Exception):  # already closed by the client
                await send(
                    {"type": "websocket.close", "code": CLOSE_SERVICE_RESTART, "reason": "restart"}
                )


async def _refuse(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"text/plain"), (b"retry-after", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": b"shutting down"})


# A challenge only moves forward (pending → approved → consumed, or to another final
# state); a status older than what a socket already has (a broker message that arrived
# after redelivery from the database) is not sent again.
_STAGE = {"pending": 0, "approved": 1}
FINAL_STAGE = 2


def _later(status: str, already: str | None) -> bool:
    if already is None:
        return True
    return _STAGE.get(status, FINAL_STAGE) > _STAGE.get(already, FINAL_STAGE)


class Realtime:
    """Wraps the AsyncServer; the rest of the app only calls `publish_*`."""

    def __init__(self, settings: Settings) -> None:
        self.broker: Broker | None = None
        if settings.redis_url:
            self.broker = Broker(
                settings.redis_url, broker_channel(settings.public_url), self._deliver
            )
        self.server = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=[settings.public_origin],
            client_manager=self.broker,
            transports=list(settings.socket_transports),
            logger=False,
            engineio_logger=False,
        )
        self.gate: SocketGate | None = None
        self._authorize: Authorizer | None = None
        # sid -> the last challenge status this process sent to that socket.
        self._sent: dict[str, str] = {}
        self.server.on("connect", self._on_connect)
        self.server.on("disconnect", self._on_disconnect)

    def set_authorizer(self, authorizer: Authorizer) -> None:
        self._authorize = authorizer

    def _sent_by_client(self, sid: str, event: str) -> bool:
        """python-socketio dispatches a client's event by its name, so a client that sends
        an event called "connect" or "disconnect" would run these handlers again with its
        own data (say, another cookie header, to join that session's rooms). The server's
        own calls come while the socket is still connecting or already disconnecting,
        when the manager does not count it as connected; a connected socket's call is
        the client's, and is ignored."""
        if not self.server.manager.is_connected(sid, "/"):
            return False
        log.warning("ignored a client event named %r from socket %s", event, sid)
        return True

    async def _on_connect(self, sid: str, environ: Any, auth: Any = None) -> bool | None:
        if self._sent_by_client(sid, "connect"):
            return None
        if self._authorize is None:
            return False
        try:
            rooms, initial = await self._authorize(parse_cookies(environ))
        except Exception:
            log.exception("socket authorisation failed")
            return False
        if not rooms:
            return False
        for room in rooms:
            await self.server.enter_room(sid, room)
        for event, data in initial:
            # Recorded before the await: a decision delivered while this emit is in flight
            # then sees the socket already has it, and is not sent twice.
            if event == CHALLENGE_EVENT:
                self._sent[sid] = str(data.get("status"))
            await self.server.emit(event, data, to=sid, ignore_queue=True)
        return True

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self._sent_by_client(sid, "disconnect"):
            return
        self._sent.pop(sid, None)

    async def publish_challenge(self, public_id: str, data: Mapping[str, Any]) -> None:
        await self._emit(CHALLENGE_EVENT, dict(data), challenge_room(public_id))

    async def publish_enrollment(self, user_id: int, data: Mapping[str, Any]) -> None:
        await self._emit(ENROLLMENT_EVENT, dict(data), user_room(user_id))

    async def _emit(self, event: str, data: dict[str, Any], room: str) -> None:
        # The database already holds the state; a page that missed this event gets it
        # on (re)connect or from redelivery. A broker outage must not fail the request
        # that decided it.
        try:
            await self._deliver(event, data, room)
        except Exception:
            log.exception("delivering %s to %s failed", event, room)
        if self.broker is not None:
            try:
                await self.broker.publish_emit(event, data, room)
            except Exception:
                log.exception("publishing %s to %s failed", event, room)

    async def _deliver(self, event: str, data: Any, room: str) -> int:
        """Send an event to this process's sockets in `room`; a challenge status goes only
        to the sockets that do not have it yet. Returns how many sockets it went to."""
        if event != CHALLENGE_EVENT or not isinstance(data, Mapping):
            await self.server.emit(event, data, room=room, ignore_queue=True)
            return len(self._members(room))
        status = str(data.get("status"))
        sent = 0
        for sid in self._members(room):
            if _later(status, self._sent.get(sid)):
                self._sent[sid] = status
                await self.server.emit(event, data, to=sid, ignore_queue=True)
                sent += 1
        return sent

    def _members(self, room: str) -> list[str]:
        return [sid for sid, _ in self.server.manager.get_participants("/", room)]

    def has_sockets_behind(self, public_id: str, status: str) -> bool:
        """Whether any socket of this process in the challenge's room lacks `status`: one
        dictionary lookup for a room this process does not hold (the usual case)."""
        room = self.server.manager.rooms.get("/", {}).get(challenge_room(public_id))
        return bool(room) and any(_later(status, self._sent.get(sid)) for sid in room)

    async def catch_up(self, public_id: str, data: Mapping[str, Any]) -> int:
        """Bring this process's sockets up to a challenge's state read from the database;
        returns how many sockets had missed it."""
        return await self._deliver(CHALLENGE_EVENT, dict(data), challenge_room(public_id))

    async def broker_ready(self) -> bool | None:
        """None without Redis; otherwise whether fan-out works both ways right now."""
        return None if self.broker is None else await self.broker.ping()

    async def drain(self) -> None:
        """Shutdown: turn new sockets away and ask every open one to reconnect elsewhere.
        WebSockets are closed at the transport (not with a Socket.IO disconnect, which
        clients take as final); long-polling sessions get Engine.IO's close packet."""
        if self.gate is not None:
            await self.gate.close_all()
        eio = self.server.eio
        polling = [sid for sid, sock in list(eio.sockets.items()) if not sock.upgraded]
        for eio_sid in polling:
            with contextlib.suppress(Exception):
                await eio.disconnect(eio_sid)

    def start(self) -> None:
        """Subscribe now rather than at the first connection (python-socketio's default),
        so a process without sockets yet still reports fan-out readiness truthfully."""
        if self.broker is not None and not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.broker.initialize()

    async def close(self) -> None:
        if self.broker is None:
            return
        self.broker.stop_listening()
        listener = getattr(self.broker, "thread", None)
        if isinstance(listener, asyncio.Task):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.broker.stopped.wait(), LISTENER_STOP_TIMEOUT)
            listener.cancel()
            await asyncio.wait({listener}, timeout=LISTENER_STOP_TIMEOUT)
        await self.broker.close()


def wrap(app: Quart, realtime: Realtime) -> SocketGate:
    gate = SocketGate(
        socketio.ASGIApp(realtime.server, other_asgi_app=app, socketio_path="socket.io")
    )
    realtime.gate = gate
    return gate
