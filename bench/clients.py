"""The waiting browsers, spread over worker processes.

A worker process holds a share of the waiters and plays one of two pages:
- push: a python-socketio AsyncClient over websocket with the browser's session cookie,
  exactly what the wait page's socket.io-client does; it timestamps each `challenge` event;
- poll: the seed app's page, asking `GET /bench/status` every `interval` seconds (each
  waiter starting at a random point of its first interval, as real page loads do) until
  the answer is no longer pending.

One Python process cannot comfortably hold 10,000 sockets and still answer on time, so
the fleet splits the waiters over several processes; they all stamp receipts with
`time.monotonic_ns()`, the machine-wide clock the decider uses too. The orchestrator talks
to each worker over a multiprocessing pipe, one command at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing as mp
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import socketio

from bench.procs import raise_fd_limit
from bench.seed import Waiter

PER_PROCESS = 2500
CONNECT_CONCURRENCY = 50
CONNECT_TIMEOUT = 20.0
COMMAND_TIMEOUT = 600.0


@dataclass
class Receipts:
    """What a worker's pages saw: the first time each status reached each waiter."""

    first: dict[str, dict[str, int]] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)

    def record(self, public_id: str, status: str, at_ns: int) -> None:
        self.first.setdefault(public_id, {}).setdefault(status, at_ns)


class PauseRecorder:
    """Times this client process's own garbage collections: a client that stopped to
    collect while an event arrived would add its pause to the measured delay."""

    def __init__(self) -> None:
        self.pauses_ms: list[float] = []
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
        else:
            self.pauses_ms.append((time.perf_counter_ns() - self._started) / 1e6)

    def summary(self) -> dict[str, float]:
        return {
            "collections": len(self.pauses_ms),
            "longest_ms": round(max(self.pauses_ms, default=0.0), 3),
            "total_ms": round(sum(self.pauses_ms), 3),
        }


class _Worker:
    def __init__(self, conn: Connection, base_url: str) -> None:
        self.pauses = PauseRecorder()
        gc.callbacks.append(self.pauses)
        self.conn = conn
        self.base_url = base_url
        self.receipts = Receipts()
        self.sockets: list[socketio.AsyncClient] = []
        self.pollers: list[asyncio.Task[None]] = []
        self.poll_errors = 0
        self.http: aiohttp.ClientSession | None = None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, force_close=False),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        try:
            while True:
                command, arg = await loop.run_in_executor(None, self.conn.recv)
                try:
                    reply: Any = await getattr(self, f"cmd_{command}")(arg)
                except Exception as exc:  # the orchestrator decides what an error means
                    reply = {"error": repr(exc)}
                self.conn.send(reply)
                if command == "stop":
                    return
        finally:
            await self.http.close()

    # --- push pages ----------------------------------------------------------------------

    async def _connect_one(self, waiter: tuple[str, str], gate: asyncio.Semaphore) -> str | None:
        public_id, cookie_header = waiter
        assert self.http is not None
        sock = socketio.AsyncClient(
            reconnection=False,
            handle_sigint=False,
            http_session=self.http,
            # The Cookie header travels with the websocket handshake itself. A header given
            # to connect() would be moved into the (shared, dummy) cookie jar and lost.
            websocket_extra_options={"headers": {"Cookie": cookie_header}},
        )

        async def on_challenge(data: dict[str, Any]) -> None:
            self.receipts.record(public_id, str(data.get("status")), time.monotonic_ns())

        sock.on("challenge", on_challenge)
        async with gate:
            try:
                await sock.connect(
                    self.base_url, transports=["websocket"], wait_timeout=CONNECT_TIMEOUT
                )
            except Exception as exc:
                return f"{public_id[:8]}: {exc!r}"
        self.sockets.append(sock)
        return None

    async def cmd_connect(self, waiters: list[tuple[str, str]]) -> dict[str, Any]:
        """Open every page's socket; wait (bounded) until each has its initial state."""
        started = time.monotonic()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        errors = [
            e
            for e in await asyncio.gather(*(self._connect_one(w, gate) for w in waiters))
            if e is not None
        ]
        deadline = time.monotonic() + CONNECT_TIMEOUT
        ids = [public_id for public_id, _ in waiters]
        while time.monotonic() < deadline:
            if all(public_id in self.receipts.first for public_id in ids):
                break
            await asyncio.sleep(0.05)
        initial = sum(1 for public_id in ids if "pending" in self.receipts.first.get(public_id, {}))
        # Everything alive now lives until the end: out of the collector's reach, so the
        # client does not pause to walk its own sockets while it times events.
        gc.collect()
        gc.freeze()
        self.pauses.pauses_ms.clear()
        return {
            "connected": len(self.sockets),
            "failed": len(errors),
            "errors": errors[:5],
            "initial_pending": initial,
            "seconds": round(time.monotonic() - started, 3),
        }

    async def cmd_disconnect(self, _: object) -> dict[str, Any]:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY * 4)

        async def close(sock: socketio.AsyncClient) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(sock.disconnect(), 10)

        count = len(self.sockets)
        await asyncio.gather(*(close(sock) for sock in self.sockets))
        self.sockets.clear()
        return {"disconnected": count}

    # --- polling pages -------------------------------------------------------------------

    async def _poll(
        self, public_id: str, cookie_header: str, interval: float, offset: float, until: float
    ) -> None:
        assert self.http is not None
        loop = asyncio.get_running_loop()
        url = f"{self.base_url}/bench/status"
        headers = {"Cookie": cookie_header}
        tick = loop.time() + offset
        count = 0
        while tick < until:
            await asyncio.sleep(max(0.0, tick - loop.time()))
            count += 1
            self.receipts.polls[public_id] = count
            try:
                async with self.http.get(url, headers=headers) as resp:
                    body = await resp.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                self.poll_errors += 1
                body = {}
            status = str(body.get("status", "")) if isinstance(body, dict) else ""
            if status and status != "pending":
                self.receipts.record(public_id, status, time.monotonic_ns())
                return
            tick += interval

    async def cmd_poll_start(self, arg: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        interval = float(arg["interval"])
        until = loop.time() + float(arg["max_seconds"])
        rng = random.Random(arg.get("seed", 0))
        for public_id, cookie_header in arg["waiters"]:
            offset = rng.uniform(0, interval)
            self.pollers.append(
                asyncio.create_task(self._poll(public_id, cookie_header, interval, offset, until))
            )
        return {"pollers": len(self.pollers)}

    async def cmd_poll_stop(self, _: object) -> dict[str, Any]:
        for task in self.pollers:
            task.cancel()
        await asyncio.gather(*self.pollers, return_exceptions=True)
        self.pollers.clear()
        return {"polls": sum(self.receipts.polls.values()), "errors": self.poll_errors}

    # --- both ----------------------------------------------------------------------------

    async def cmd_receipts(self, _: object) -> dict[str, Any]:
        """Every non-pending status seen so far, with its time, and each page's poll count."""
        decided = {
            public_id: {s: t for s, t in seen.items() if s != "pending"}
            for public_id, seen in self.receipts.first.items()
        }
        return {
            "decided": {k: v for k, v in decided.items() if v},
            "polls": dict(self.receipts.polls),
            "pauses": self.pauses.summary(),
        }

    async def cmd_stop(self, _: object) -> dict[str, Any]:
        await self.cmd_poll_stop(None)
        await self.cmd_disconnect(None)
        return {"stopped": True}


def _worker_main(conn: Connection, base_url: str) -> None:
    raise_fd_limit()
    asyncio.run(_Worker(conn, base_url).serve())


class Fleet:
    """The orchestrator's handle on the worker processes holding the waiting pages."""

    def __init__(self, base_url: str, waiters: Sequence[Waiter], per_process: int = PER_PROCESS):
        self.base_url = base_url
        self.waiters = list(waiters)
        count = max(1, -(-len(self.waiters) // per_process))
        self.shares = [self.waiters[i::count] for i in range(count)]
        context = mp.get_context("spawn")
        self.client_pauses: list[dict[str, float]] = []  # per process, at the last receipts()
        self.conns: list[Connection] = []
        self.procs: list[mp.process.BaseProcess] = []
        for _ in self.shares:
            ours, theirs = context.Pipe()
            proc = context.Process(target=_worker_main, args=(theirs, base_url), daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(ours)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs if proc.pid is not None]

    def _ask(self, index: int, command: str, arg: object) -> Any:
        conn = self.conns[index]
        conn.send((command, arg))
        if not conn.poll(COMMAND_TIMEOUT):
            raise TimeoutError(f"client worker {index} did not answer {command!r}")
        reply = conn.recv()
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"client worker {index} failed {command!r}: {reply['error']}")
        return reply

    async def _all(self, command: str, args: Sequence[object]) -> list[Any]:
        return list(
            await asyncio.gather(
                *(asyncio.to_thread(self._ask, i, command, arg) for i, arg in enumerate(args))
            )
        )

    async def connect(self) -> dict[str, Any]:
        replies = await self._all(
            "connect", [[(w.public_id, w.cookie_header) for w in share] for share in self.shares]
        )
        return {
            "connected": sum(r["connected"] for r in replies),
            "failed": sum(r["failed"] for r in replies),
            "errors": [e for r in replies for e in r["errors"]][:5],
            "initial_pending": sum(r["initial_pending"] for r in replies),
            "seconds": max(r["seconds"] for r in replies),
            "processes": len(replies),
        }

    async def start_polling(self, interval: float, max_seconds: float) -> None:
        await self._all(
            "poll_start",
            [
                {
                    "waiters": [(w.public_id, w.cookie_header) for w in share],
                    "interval": interval,
                    "max_seconds": max_seconds,
                    "seed": index,
                }
                for index, share in enumerate(self.shares)
            ],
        )

    async def stop_polling(self) -> dict[str, int]:
        replies = await self._all("poll_stop", [None] * len(self.shares))
        return {
            "polls": sum(r["polls"] for r in replies),
            "errors": sum(r["errors"] for r in replies),
        }

    async def receipts(self) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        replies = await self._all("receipts", [None] * len(self.shares))
        decided: dict[str, dict[str, int]] = {}
        polls: dict[str, int] = {}
        for reply in replies:
            decided.update(reply["decided"])
            polls.update(reply["polls"])
        self.client_pauses = [reply["pauses"] for reply in replies]
        return decided, polls

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._all("stop", [None] * len(self.shares)), 120)
        except Exception:
            pass
        finally:
            self.kill()

    def kill(self) -> None:
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in self.conns:
            conn.close()
