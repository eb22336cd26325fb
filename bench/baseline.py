"""The bare stack (bench.bare) measured the way push2fa is, in the same run: every push2fa
figure is then also reported as push2fa / bare, a ratio that survives a busy machine far
better than the absolute figures do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import psutil

from bench import bare
from bench.procs import Children, reserve_listener, url_of, wait_http_ok
from bench.seed import Waiter
from bench.stats import summarize

log = logging.getLogger("bench")

STARTUP_TIMEOUT = 60.0
THRESHOLDS_MS = (10, 50, 100)


async def read_probe(
    http: aiohttp.ClientSession, app_url: str, reset: bool = False
) -> dict[str, Any]:
    """The stall and GC probe's figures (bench/probe.py) since its last reset; `reset`
    starts a new window. With several workers, whichever worker answers."""
    method = "POST" if reset else "GET"
    async with http.request(method, f"{app_url}/_probe{'/reset' if reset else ''}") as resp:
        resp.raise_for_status()
        body: dict[str, Any] = await resp.json()
        return body


@dataclass
class BareStack:
    app_url: str
    server_pid: int
    http: aiohttp.ClientSession
    workers: int = 0
    # What callbacks.prepare reads; the bare app checks no signature.
    settings: Any = field(
        default_factory=lambda: SimpleNamespace(authy_api_key="bare-key", authy_app_id="bare-app")
    )

    @property
    def webhook_url(self) -> str:
        return f"{self.app_url}/webhooks/authy"

    def server_processes(self) -> list[psutil.Process]:
        root = psutil.Process(self.server_pid)
        if self.workers == 0:
            return [root]
        return root.children(recursive=True) or [root]

    def server_rss(self) -> int:
        return sum(int(p.memory_info().rss) for p in self.server_processes())

    def server_cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.server_processes():
            times = proc.cpu_times()
            total += times.user + times.system
        return total

    async def probe(self, reset: bool = False) -> dict[str, Any]:
        return await read_probe(self.http, self.app_url, reset)


def shares_over(delays: Sequence[float], missing: int) -> dict[str, float]:
    """Share of decisions slower than each threshold; a missing event counts as slower."""
    total = len(delays) + missing
    if total == 0:
        return {}
    return {
        f"over_{limit}_ms": round((sum(d > limit for d in delays) + missing) / total, 4)
        for limit in THRESHOLDS_MS
    }


async def cpu_over(server_cpu: Any, seconds: float) -> float:
    """% of one core that `server_cpu()` (CPU seconds) grew by over a window."""
    before, started = server_cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    share: float = round(100 * (server_cpu() - before) / (time.monotonic() - started), 2)
    return share


def bare_waiters(n: int) -> list[Waiter]:
    """Pages for the bare app: the cookie names the room, the uuid too."""
    out = []
    for index in range(n):
        public_id = secrets.token_urlsafe(32)
        out.append(Waiter(public_id, index, 1, public_id, public_id, ""))
    return out


@contextlib.asynccontextmanager
async def running_bare(
    children: Children, workdir: Path, workers: int = 0, redis_url: str = ""
) -> AsyncIterator[BareStack]:
    """The bare app under Hypercorn; with `workers` > 0 and a Redis URL, several worker
    processes whose emits travel over python-socketio's stock AsyncRedisManager."""
    workdir.mkdir(parents=True, exist_ok=True)
    listener = reserve_listener()
    app_url = url_of(listener)
    tag = workdir.name
    env = {k: v for k, v in os.environ.items() if k != bare.REDIS_ENV}
    if redis_url:
        env[bare.REDIS_ENV] = redis_url
    try:
        server = children.spawn(
            f"{tag}-bare",
            "bench.server",
            ["--workers", str(workers), "--app", "bench.bare_asgi:app"],
            env=env,
            log_path=workdir / "bare.log",
            listener=listener,
        )
        await wait_http_ok(f"{app_url}/readyz", server, STARTUP_TIMEOUT, workdir / "bare.log")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            yield BareStack(app_url=app_url, server_pid=server.pid, http=http, workers=workers)
    finally:
        children.stop(f"{tag}-bare")


async def bare_push_delay(
    children: Children,
    workdir: Path,
    plan: Any,
    n: int,
    workers: int = 0,
    redis_url: str = "",
) -> dict[str, Any]:
    """The push scenario's figures for the bare stack: memory, idle CPU, then the same
    rounds of callbacks at the same rate, timed the same way, from the same probe split."""
    from bench.scenarios import _decide_rounds, probe_and_bulk, probe_split

    label = f"bare-{n}" + (f"-w{workers}-redis" if redis_url else "")
    async with running_bare(children, workdir / label, workers, redis_url) as stack:
        waiters = bare_waiters(n)
        await asyncio.sleep(plan.settle_seconds)
        rss_before = stack.server_rss()
        probe, bulk = probe_split(waiters, plan, n)
        async with probe_and_bulk(stack, probe, bulk) as (fleet, connected):
            await asyncio.sleep(plan.settle_seconds)
            rss_after = stack.server_rss()
            await stack.probe(reset=True)
            idle_cpu = await cpu_over(stack.server_cpu_seconds, plan.idle_seconds)
            idle_probe = await stack.probe()
            await stack.probe(reset=True)
            cpu_before = stack.server_cpu_seconds()
            rounds, pooled = await _decide_rounds(stack, fleet, probe, plan, plan.rounds)
            cpu_rounds = stack.server_cpu_seconds() - cpu_before
            rounds_probe = await stack.probe()
            await fleet.receipts()
            pauses = fleet.client_pauses
    decisions = sum(r["decisions"] for r in rounds)
    missing = sum(r["missing"] for r in rounds)
    return {
        "n": n,
        "workers": max(1, workers),
        "redis": bool(redis_url),
        "connect": connected,
        "rss_per_waiter_bytes": round((rss_after - rss_before) / max(1, connected["connected"])),
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "idle_cpu_percent": idle_cpu,
        "idle_probe": idle_probe,
        "rounds": rounds,
        "rounds_probe": rounds_probe,
        "delay_ms": summarize(pooled),
        "shares": shares_over(pooled, missing),
        "decisions": decisions,
        "missing": missing,
        "cpu_ms_per_decision": round(1000 * cpu_rounds / max(1, decisions), 3),
        "client_pauses": pauses,
    }


def _ratio(ours: Any, bare: Any) -> float | None:
    if not isinstance(ours, int | float) or not isinstance(bare, int | float) or bare <= 0:
        return None
    return round(ours / bare, 2)


def _idle_cpu(entry: dict[str, Any]) -> Any:
    idle = entry.get("idle")
    return idle["cpu_percent"]["server"] if isinstance(idle, dict) else entry["idle_cpu_percent"]


def _probe(entry: dict[str, Any], window: str, *path: str) -> Any:
    value: Any = entry.get(f"{window}_probe") or {}
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _longest_full_gc(entry: dict[str, Any]) -> Any:
    found = [_probe(entry, w, "gc", "gen2", "longest_ms") for w in ("idle", "rounds")]
    values = [v for v in found if isinstance(v, int | float)]
    return max(values) if values else None


def _full_gc_per_1000(entry: dict[str, Any]) -> Any:
    count = _probe(entry, "rounds", "gc", "gen2", "count")
    if not isinstance(count, int) or not entry.get("decisions"):
        return None
    return round(1000 * count / entry["decisions"], 2)


def _gc_ms_per_decision(entry: dict[str, Any]) -> Any:
    gcs = _probe(entry, "rounds", "gc") or {}
    if not gcs or not entry.get("decisions"):
        return None
    return round(sum(g["total_ms"] for g in gcs.values()) / entry["decisions"], 3)


FIGURES: dict[str, Any] = {
    "delay_p50_ms": lambda e: e["delay_ms"]["median"],
    "delay_p99_ms": lambda e: e["delay_ms"]["p99"],
    "cpu_ms_per_decision": lambda e: e["cpu_ms_per_decision"],
    "gc_ms_per_decision": _gc_ms_per_decision,
    "full_gc_per_1000_decisions": _full_gc_per_1000,
    "longest_full_gc_ms": _longest_full_gc,
    "stalled_share_rounds": lambda e: _probe(e, "rounds", "stalled_share"),
    "idle_cpu_percent": _idle_cpu,
    "stalled_share_idle": lambda e: _probe(e, "idle", "stalled_share"),
    "rss_per_waiter_bytes": lambda e: e["rss_per_waiter_bytes"],
    **{
        f"share_over_{limit}_ms": (lambda e, k=f"over_{limit}_ms": e["shares"].get(k))
        for limit in THRESHOLDS_MS
    },
}


def ratios(push: Sequence[dict[str, Any]], bare: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """push2fa and bare side by side for each N, with push2fa / bare."""
    by_n = {b.get("n"): b for b in bare if "error" not in b}
    rows = []
    for ours in push:
        ref = by_n.get(ours.get("n"))
        if ref is None or "error" in ours:
            continue
        figures = {}
        for name, read in FIGURES.items():
            a, b = read(ours), read(ref)
            figures[name] = {"push2fa": a, "bare": b, "ratio": _ratio(a, b)}
        rows.append(
            {
                "n": ours["n"],
                "workers": ours.get("workers", 1),
                "database": ours.get("database", "sqlite"),
                "figures": figures,
            }
        )
    return rows
