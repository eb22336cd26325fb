"""The Socket.IO server: who may connect, which rooms they are in, and the one publish path.

Clients never name rooms. At connect time the server reads the browser's signed cookies
from the handshake, decides the rooms (`user:<id>` for a logged-in user, `challenge:<id>`
for the login challenge bound to this browser's session) and refuses everything else.
Right after joining, the current state is sent, so an answer that arrived while the page
was loading or reconnecting is never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

import socketio
from quart import Quart

from push2fa.config import Settings

log = logging.getLogger("push2fa.realtime")

CHALLENGE_EVENT = "challenge"
ENROLLMENT_EVENT = "enrollment"

# Decides the rooms for a handshake and returns (rooms, initial events to send).
Authorizer = Callable[[Mapping[str, str]], Awaitable[tuple[list[str], list[tuple[str, Any]]]]]


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


class Realtime:
    """Wraps the AsyncServer; the rest of the app only calls `publish_*`."""

    def __init__(self, settings: Settings) -> None:
        manager = None
        if settings.redis_url:
            manager = socketio.AsyncRedisManager(settings.redis_url)
        self.server = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=[settings.public_origin],
            client_manager=manager,
            logger=False,
            engineio_logger=False,
        )
        self._authorize: Authorizer | None = None
        self.server.on("connect", self._on_connect)

    def set_authorizer(self, authorizer: Authorizer) -> None:
        self._authorize = authorizer

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
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
            await self.server.emit(event, data, to=sid)
        return True

    async def publish_challenge(self, public_id: str, data: Mapping[str, Any]) -> None:
        await self._emit(CHALLENGE_EVENT, dict(data), challenge_room(public_id))

    async def publish_enrollment(self, user_id: int, data: Mapping[str, Any]) -> None:
        await self._emit(ENROLLMENT_EVENT, dict(data), user_room(user_id))

    async def _emit(self, event: str, data: dict[str, Any], room: str) -> None:
        try:
            await self.server.emit(event, data, room=room)
        except Exception:
            # The database already holds the state; a page that missed this event gets it
            # on (re)connect. A broker outage must not fail the request that decided it.
            log.exception("publishing %s to %s failed", event, room)


def wrap(app: Quart, realtime: Realtime) -> socketio.ASGIApp:
    return socketio.ASGIApp(realtime.server, other_asgi_app=app, socketio_path="socket.io")
