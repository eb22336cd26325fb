"""The Socket.IO server: who may connect, which rooms they are in, and the one publish path.

Clients never name rooms. At connect time the server reads the browser's signed cookies
from the handshake, decides the rooms (`user:<id>` for a logged-in user, `challenge:<id>`
for the login challenge bound to this browser's session) and refuses everything else.
Right after joining, the current state is sent, so an answer that arrived while the page
was loading or reconnecting is never lost.

Every process remembers which challenge status each of its own sockets was last sent, and
`catch_up` (driven from the database by the redelivery loop) sends whatever a waiting socket
missed, whatever the broker (push2fa.realtime.broker) lost. The same record drops an event a
socket already has, so a page hears each status once, whichever path brought it first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

import socketio
from quart import Quart

from push2fa.config import Settings
from push2fa.realtime.broker import Broker, broker_channel
from push2fa.realtime.gate import SocketGate
from push2fa.realtime.rooms import CHALLENGE_EVENT, ENROLLMENT_EVENT, challenge_room, user_room

log = logging.getLogger("push2fa.realtime")

# Reads the current state of what a socket listens to, as the events that say it.
State = Callable[[], Awaitable[list[tuple[str, Any]]]]
# Decides the rooms for a handshake, and how to read their current state once joined.
Authorizer = Callable[[Mapping[str, str]], Awaitable[tuple[list[str], State]]]


def parse_cookies(environ: Mapping[str, Any]) -> dict[str, str]:
    raw = environ.get("HTTP_COOKIE", "")
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


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

    @property
    def open_websockets(self) -> int:
        return 0 if self.gate is None else self.gate.open_websockets

    @property
    def websockets_opened(self) -> int:
        """WebSockets accepted since start (open or closed since)."""
        return 0 if self.gate is None else self.gate.opened

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
            rooms, state = await self._authorize(parse_cookies(environ))
        except Exception:
            log.exception("socket authorisation failed")
            return False
        if not rooms:
            return False
        # Join first, then read the state: a change committed before the read is in it, and
        # one published after the join reaches this socket. Read first, a change landing
        # between the read and the join was lost (a phone enrolled mid-handshake left the
        # enrolment page waiting for ever).
        for room in rooms:
            await self.server.enter_room(sid, room)
        try:
            initial = await state()
        except Exception:
            log.exception("reading a new socket's state failed")
            initial = []
        for event, data in initial:
            if event == CHALLENGE_EVENT:
                status = str(data.get("status"))
                if not _later(status, self._sent.get(sid)):
                    continue  # delivered while the state was being read
                # Recorded before the await: a decision delivered while this emit is in
                # flight then sees the socket already has it, and is not sent twice.
                self._sent[sid] = status
            await self.server.emit(event, data, to=sid)
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
                await self.broker.publish(event, data, room)
            except Exception:
                log.exception("publishing %s to %s failed", event, room)

    async def _deliver(self, event: str, data: Any, room: str) -> int:
        """Send an event to this process's sockets in `room`; a challenge status goes only
        to the sockets that do not have it yet. Returns how many sockets it went to."""
        if event != CHALLENGE_EVENT or not isinstance(data, Mapping):
            await self.server.emit(event, data, room=room)
            return len(self._members(room))
        status = str(data.get("status"))
        sent = 0
        for sid in self._members(room):
            if _later(status, self._sent.get(sid)):
                self._sent[sid] = status
                await self.server.emit(event, data, to=sid)
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
        polling = [
            eio_sid
            for sid, eio_sid in self.server.manager.get_participants("/", None)
            if self.server.eio.transport(eio_sid) == "polling"
        ]
        for eio_sid in polling:
            with contextlib.suppress(Exception):
                await self.server.eio.disconnect(eio_sid)

    def start(self) -> None:
        """Subscribe now rather than at the first connection, so a process without sockets
        yet still reports fan-out readiness truthfully."""
        if self.broker is not None:
            self.broker.start()

    async def close(self) -> None:
        if self.broker is not None:
            await self.broker.close()


def wrap(app: Quart, realtime: Realtime) -> SocketGate:
    gate = SocketGate(
        socketio.ASGIApp(realtime.server, other_asgi_app=app, socketio_path="socket.io")
    )
    realtime.gate = gate
    return gate
