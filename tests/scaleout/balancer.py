"""A TCP load balancer for tests: what nginx with several upstreams does, in a few lines.

Each new connection goes to the next backend in turn (or to the preferred one while it
answers); a backend that refuses the connection is skipped, as `proxy_next_upstream error`
does. Bytes are copied both ways untouched, so HTTP, WebSocket upgrades and Socket.IO all
pass through. The balancer records which backend each connection went to.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from dataclasses import dataclass, field

CONNECT_TIMEOUT = 2.0
CHUNK = 64 * 1024


@dataclass
class Backend:
    name: str
    host: str
    port: int


@dataclass
class Balancer:
    backends: list[Backend]
    prefer: str | None = None
    routed: Counter[str] = field(default_factory=Counter)
    _next: int = 0
    _server: asyncio.Server | None = None
    _pipes: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, listener: socket.socket) -> None:
        listener.listen(512)
        listener.setblocking(False)
        self._server = await asyncio.start_server(self._handle, sock=listener)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _order(self) -> list[Backend]:
        if self.prefer is not None:
            first = [b for b in self.backends if b.name == self.prefer]
            return first + [b for b in self.backends if b.name != self.prefer]
        start = self._next % len(self.backends)
        self._next += 1
        return self.backends[start:] + self.backends[:start]

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            for backend in self._order():
                try:
                    upstream_r, upstream_w = await asyncio.wait_for(
                        asyncio.open_connection(backend.host, backend.port), CONNECT_TIMEOUT
                    )
                except (OSError, TimeoutError):
                    continue
                self.routed[backend.name] += 1
                try:
                    await asyncio.gather(_copy(client_r, upstream_w), _copy(upstream_r, client_w))
                finally:
                    upstream_w.close()
                return
        finally:
            client_w.close()
            self._pipes.discard(task)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()
