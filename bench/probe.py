"""Loop stalls and garbage collections, measured the same way in push2fa and the bare stack.

ASGI middleware that bench/server.py puts around whichever app it serves, so both stacks
carry the same instrument at the same cost. It answers `GET /_probe` (the figures since
the last reset) and `POST /_probe/reset`; everything else passes through untouched.

- Time stalled: a timer is due every TICK seconds; whenever it fires more than THRESHOLD
  late, the loop was held (by CPU work, a collection, the GIL, or the process not being
  scheduled at all) and the lateness is added up. `stalled_share` is that sum over the
  window's wall time: the share of time during which no socket of this process could be
  served, counting only stalls over THRESHOLD. A lag percentile hides how long the loop
  was away; this does not. The timer's own cost is one callback per TICK in both stacks.
- Garbage collections: count, total and longest pause per generation (`gc.callbacks`).
  A full collection walks every tracked object not frozen, so its pause grows with the
  number of open sockets.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/_probe"
TICK = 0.010
THRESHOLD = 0.020


class StallProbe:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._gc_started = 0.0
        self.reset()

    def reset(self) -> None:
        self.window_started = time.monotonic()
        self.stalled = 0.0
        self.stalls = 0
        self.longest = 0.0
        self.ticks = 0
        self.gc_counts = [0, 0, 0]
        self.gc_seconds = [0.0, 0.0, 0.0]
        self.gc_longest = [0.0, 0.0, 0.0]

    def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        gc.callbacks.append(self._on_gc)
        self._due = self._loop.time() + TICK
        self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        late = now - self._due
        self.ticks += 1
        if late > THRESHOLD:
            self.stalled += late
            self.stalls += 1
            self.longest = max(self.longest, late)
        self._due = now + TICK
        self._loop.call_at(self._due, self._tick)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        generation = info.get("generation", 2)
        if 0 <= generation <= 2 and self._gc_started:
            pause = time.perf_counter() - self._gc_started
            self.gc_counts[generation] += 1
            self.gc_seconds[generation] += pause
            self.gc_longest[generation] = max(self.gc_longest[generation], pause)

    def summary(self, objects: bool = True) -> dict[str, Any]:
        """The window's figures; `objects` also counts what the collector tracks (a walk
        of the heap: asked for at the end of a window, never inside one)."""
        wall = max(1e-9, time.monotonic() - self.window_started)
        return {
            "pid": os.getpid(),
            "seconds": round(wall, 3),
            "stalled_ms": round(1000 * self.stalled, 3),
            "stalled_share": round(self.stalled / wall, 5),
            "stalls": self.stalls,
            "longest_stall_ms": round(1000 * self.longest, 3),
            "ticks": self.ticks,
            "gc": {
                f"gen{g}": {
                    "count": self.gc_counts[g],
                    "total_ms": round(1000 * self.gc_seconds[g], 3),
                    "longest_ms": round(1000 * self.gc_longest[g], 3),
                }
                for g in range(3)
            },
            "gc_tracked_objects": len(gc.get_objects()) if objects else None,
            "gc_frozen_objects": gc.get_freeze_count(),
        }


def wrap(app: ASGIApp, probe: StallProbe | None = None) -> ASGIApp:
    """`app` with the probe started on its loop and its two routes in front."""
    meter = probe or StallProbe()

    async def probed(scope: Scope, receive: Receive, send: Send) -> None:
        meter.start()
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(PATH):
            await app(scope, receive, send)
            return
        resetting = scope.get("method") == "POST" and path == f"{PATH}/reset"
        if resetting:
            meter.reset()
        body = json.dumps(meter.summary(objects=not resetting)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return probed
