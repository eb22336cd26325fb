"""Counts what reaches the server, by kind, as ASGI middleware around the whole stack.

"Requests per login" and "requests/s while N browsers wait" are the polling design's
cost; counting at the ASGI edge sees exactly what Hypercorn hands the app (HTTP requests,
websocket handshakes, frames each way) without trusting either client's own bookkeeping.
The harness's own /bench/* calls are kept apart so they never inflate a figure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def kind_of(scope: Scope) -> str:
    path: str = scope.get("path", "")
    if scope["type"] == "websocket":
        return "websocket_handshake"
    if path.startswith("/socket.io"):
        return "socketio_http"
    if path == "/bench/status":
        return "status_poll"
    if path.startswith("/bench/"):
        return "harness"
    if path.startswith("/webhooks/"):
        return "webhook"
    return "other_http"


class TrafficCounter:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.websockets_open = 0

    def reset(self) -> None:
        self.counts.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "websockets_open": self.websockets_open}

    def wrap(self, app: ASGIApp) -> ASGIApp:
        counts = self.counts

        async def counted(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                counts[kind_of(scope)] += 1
                await app(scope, receive, send)
                return
            if scope["type"] != "websocket":
                await app(scope, receive, send)
                return
            counts["websocket_handshake"] += 1
            self.websockets_open += 1

            async def receive_counted() -> Message:
                message = await receive()
                if message["type"] == "websocket.receive":
                    counts["ws_frames_in"] += 1
                return message

            async def send_counted(message: Message) -> None:
                if message["type"] == "websocket.send":
                    counts["ws_frames_out"] += 1
                await send(message)

            try:
                await app(scope, receive_counted, send_counted)
            finally:
                self.websockets_open -= 1

        return counted
