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

from bench.procs import Children, reserve_listener, url_of, wait_http_ok
from bench.seed import Waiter
from bench.stats import summarize

log = logging.getLogger("bench")

STARTUP_TIMEOUT = 60.0
THRESHOLDS_MS = (10, 50, 100)


@dataclass
class BareStack:
    app_url: str
    server_pid: int
    http: aiohttp.ClientSession
    # What callbacks.prepare reads; the bare app checks no signature.
    settings: Any = field(
        default_factory=lambda: SimpleNamespace(authy_api_key="bare-key", authy_app_id="bare-app")
    )

    @property
    def webhook_url(self) -> str:
        return f"{self.app_url}/webhooks/authy"

    def server_rss(self) -> int:
        return int(psutil.Process(self.server_pid).memory_info().rss)

    def server_cpu_seconds(self) -> float:
        times = psutil.Process(self.server_pid).cpu_times()
        return float(times.user + times.system)


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
async def running_bare(children: Children, workdir: Path) -> AsyncIterator[BareStack]:
    workdir.mkdir(parents=True, exist_ok=True)
    listener = reserve_listener()
    app_url = url_of(listener)
    tag = workdir.name
    try:
        server = children.spawn(
            f"{tag}-bare",
            "bench.server",
            ["--workers", "0", "--app", "bench.bare:app"],
            env=dict(os.environ),
            log_path=workdir / "bare.log",
            listener=listener,
        )
        await wait_http_ok(f"{app_url}/readyz", server, STARTUP_TIMEOUT, workdir / "bare.log")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            yield BareStack(app_url=app_url, server_pid=server.pid, http=http)
    finally:
        children.stop(f"{tag}-bare")


async def bare_push_delay(children: Children, workdir: Path, plan: Any, n: int) -> dict[str, Any]:
    """The push scenario's figures for the bare stack: memory, idle CPU, then the same
    rounds of callbacks at the same rate, timed the same way, from the same probe split."""
    from bench.scenarios import _decide_rounds, probe_and_bulk, probe_split

    async with running_bare(children, workdir / f"bare-{n}") as stack:
        waiters = bare_waiters(n)
        await asyncio.sleep(plan.settle_seconds)
        rss_before = stack.server_rss()
        probe, bulk = probe_split(waiters, plan, n)
        async with probe_and_bulk(stack, probe, bulk) as (fleet, connected):
            await asyncio.sleep(plan.settle_seconds)
            rss_after = stack.server_rss()
            idle_cpu = await cpu_over(stack.server_cpu_seconds, plan.idle_seconds)
            cpu_before = stack.server_cpu_seconds()
            rounds, pooled = await _decide_rounds(stack, fleet, probe, plan, plan.rounds)
            cpu_rounds = stack.server_cpu_seconds() - cpu_before
            await fleet.receipts()
            pauses = fleet.client_pauses
    decisions = sum(r["decisions"] for r in rounds)
    missing = sum(r["missing"] for r in rounds)
    return {
        "n": n,
        "connect": connected,
        "rss_per_waiter_bytes": round((rss_after - rss_before) / max(1, connected["connected"])),
        "rss_after_bytes": rss_after,
        "idle_cpu_percent": idle_cpu,
        "rounds": rounds,
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


def ratios(push: Sequence[dict[str, Any]], bare: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """push2fa and bare side by side for each N, with push2fa / bare."""
    by_n = {b.get("n"): b for b in bare if "error" not in b}
    rows = []
    for ours in push:
        ref = by_n.get(ours.get("n"))
        if ref is None or "error" in ours:
            continue
        figures = {
            "delay_p50_ms": (ours["delay_ms"]["median"], ref["delay_ms"]["median"]),
            "delay_p99_ms": (ours["delay_ms"]["p99"], ref["delay_ms"]["p99"]),
            "cpu_ms_per_decision": (ours["cpu_ms_per_decision"], ref["cpu_ms_per_decision"]),
            "idle_cpu_percent": (ours["idle"]["cpu_percent"]["server"], ref["idle_cpu_percent"]),
            "rss_per_waiter_bytes": (ours["rss_per_waiter_bytes"], ref["rss_per_waiter_bytes"]),
        }
        for limit in THRESHOLDS_MS:
            key = f"over_{limit}_ms"
            figures[f"share_{key}"] = (ours["shares"].get(key), ref["shares"].get(key))
        rows.append(
            {
                "n": ours["n"],
                "figures": {
                    name: {"push2fa": a, "bare": b, "ratio": _ratio(a, b)}
                    for name, (a, b) in figures.items()
                },
            }
        )
    return rows
