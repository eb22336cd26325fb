"""Event-loop lag, measured inside the server: how late a 10 ms timer fires.

Anything that holds the loop (CPU work in a handler, a blocking call, the GIL held by
another thread) delays every websocket in the process by the same amount, so the lag's
tail is the floor under the push delay. The sampler is off until asked for, because its
100 wake-ups a second would otherwise show up in the idle-CPU figure.

While it runs, a watchdog thread notices when the loop has not come round for
STALL_SECONDS and keeps the loop thread's stack at that moment: the evidence of what held
it (a profiler's averages hide a single 200 ms stall). Garbage-collector pauses are timed
too (gc.callbacks): a full collection walks every live object, and every open socket adds
objects, so its pause grows with the number of waiting browsers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import time
import traceback
from collections import deque
from typing import Any

from bench.stats import summarize

INTERVAL = 0.010
MAX_SAMPLES = 200_000  # 2,000 s at 10 ms: more than any phase of a run
STALL_SECONDS = 0.050
MAX_STALLS = 20


class LagMonitor:
    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=MAX_SAMPLES)
        self.stalls: list[dict[str, Any]] = []
        self.gc_pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None
        self._last_tick = time.monotonic()
        self._watchdog: threading.Thread | None = None
        self._stop_watchdog = threading.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._last_tick = time.monotonic()
            self._task = asyncio.get_running_loop().create_task(self._sample(), name="bench-lag")
            self._stop_watchdog.clear()
            self._watchdog = threading.Thread(
                target=self._watch,
                args=(threading.get_ident(),),
                name="bench-lag-watchdog",
                daemon=True,
            )
            self._watchdog.start()
            if self._on_gc not in gc.callbacks:
                gc.callbacks.append(self._on_gc)

    async def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        self._stop_watchdog.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._watchdog is not None:
            await asyncio.to_thread(self._watchdog.join, 1.0)
            self._watchdog = None

    def reset(self) -> None:
        self.samples.clear()
        self.stalls.clear()
        for pauses in self.gc_pauses.values():
            pauses.clear()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            pauses = self.gc_pauses.get(info.get("generation", 2))
            if pauses is not None and len(pauses) < MAX_SAMPLES:
                pauses.append(time.perf_counter() - self._gc_started)

    def _watch(self, loop_thread: int) -> None:
        reported_tick = 0.0
        while not self._stop_watchdog.wait(INTERVAL / 2):
            tick = self._last_tick
            stalled = time.monotonic() - tick
            if stalled < STALL_SECONDS or tick == reported_tick or len(self.stalls) >= MAX_STALLS:
                continue
            frame = sys._current_frames().get(loop_thread)
            if frame is None:
                continue
            reported_tick = tick
            stack = traceback.format_stack(frame)[-24:]
            self.stalls.append({"stalled_ms": round(stalled * 1000, 1), "stack": stack})

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            self._last_tick = time.monotonic()
            self.samples.append(loop.time() - before - self.interval)

    def summary(self) -> dict[str, Any]:
        """Lag in milliseconds since the last reset."""
        return {
            "running": self.running,
            **summarize(s * 1000 for s in self.samples),
            "stalls": list(self.stalls),
            "gc_pause_ms": {
                f"gen{generation}": summarize(p * 1000 for p in pauses)
                for generation, pauses in self.gc_pauses.items()
            },
        }
