"""Draining sockets at shutdown: an ASGI wrapper around the Socket.IO endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

SOCKETIO_PATH = "/socket.io/"

# WebSocket close codes (RFC 6455 §7.4.1, IANA registry): "service restart" for sockets
# open at shutdown, "try again later" for handshakes that arrive while draining.
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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
