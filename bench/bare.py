"""The bare stack: the reference every push2fa figure is divided by.

The least a Quart + python-socketio + Hypercorn app can do for the same job: a socket
joins the room its cookie names and is told "pending"; a POST to the webhook path emits
"approved" to the room the body's uuid names. No database, no signature, no state machine.
Served by bench.server with the same Hypercorn configuration, driven by the same client
fleet and the same callbacks (the Waiter's uuid is its public id here). With BARE_REDIS_URL
set (2 workers), emits go through python-socketio's stock AsyncRedisManager.
"""

from __future__ import annotations

import json
import os
from http.cookies import SimpleCookie
from typing import Any

import socketio
from quart import Quart, request

from bench.seed import SESSION_COOKIE

# With several Hypercorn workers: python-socketio's stock Redis manager, nothing more.
REDIS_ENV = "BARE_REDIS_URL"
_redis_url = os.environ.get(REDIS_ENV, "")
sio = socketio.AsyncServer(
    async_mode="asgi",
    transports=["websocket"],
    client_manager=socketio.AsyncRedisManager(_redis_url) if _redis_url else None,
)
web = Quart(__name__)


async def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
    jar: SimpleCookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
    morsel = jar.get(SESSION_COOKIE)
    if morsel is None:
        return False
    await sio.enter_room(sid, f"challenge:{morsel.value}")
    await sio.emit("challenge", {"status": "pending"}, to=sid)
    return True


# Registered by call, as push2fa.realtime.hub does: socketio's decorator is untyped.
sio.on("connect", on_connect)


@web.post("/webhooks/authy")
async def webhook() -> dict[str, str]:
    body = json.loads(await request.get_data())
    await sio.emit("challenge", {"status": body["status"]}, room=f"challenge:{body['uuid']}")
    return {"status": "ok", "note": "decided"}


@web.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


app = socketio.ASGIApp(sio, other_asgi_app=web, socketio_path="socket.io")
