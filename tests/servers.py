"""Run an ASGI app under a real Hypercorn server for the length of a test.

Live-server tests talk to the app the way its real clients do: over TCP, with lifespan
startup and shutdown, WebSockets, and real timing. The port is taken race-free: a socket
bound to port 0 is handed to Hypercorn (``fd://``), so nothing else can grab the port
between choosing and serving it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

from hypercorn.asyncio import serve
from hypercorn.config import Config

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 10.0


def reserve_listener() -> socket.socket:
    """A socket bound to a free port, to learn a server's URL before building its app
    (the app's public URL, the emulator's callback URL); pass it to `serve_asgi`."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    return listener


def url_of(listener: socket.socket) -> str:
    return f"http://{HOST}:{listener.getsockname()[1]}"


@contextlib.asynccontextmanager
async def serve_asgi(
    app: Any, *, graceful_timeout: float = 2.0, listener: socket.socket | None = None
) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 and a free port; yield its base URL ``http://host:port``.

    The server is accepting connections (so lifespan startup has completed) when the block
    starts, and has shut down gracefully, lifespan shutdown included, when it ends. An error
    during startup or serving is raised here.
    """
    if listener is None:
        listener = reserve_listener()
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # Hypercorn owns (and closes) it now
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    stop = asyncio.Event()
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        await _wait_until_accepting(server, port)
        yield f"http://{HOST}:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(server, graceful_timeout + STARTUP_TIMEOUT)


async def _wait_until_accepting(server: asyncio.Task[None], port: int) -> None:
    """Hypercorn only listens after lifespan startup, so a connection means ready."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    while True:
        if server.done():
            server.result()  # raises the startup error
            raise RuntimeError("the server stopped before accepting connections")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"no server accepting on {HOST}:{port}") from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
