"""`python -m bench.hotpath [--n 1000] [--decisions 800] [--rate 40]`: what one decision
costs the server, for a before/after of a change to the webhook path.

It starts the benchmark's stack, opens N waiting pages, sends a warm-up batch, then
`--decisions` signed callbacks at a steady rate, and prints per decision: server CPU
(split into the event-loop thread and every other thread: aiosqlite's connection threads,
to_thread workers), SQL statements, hops to aiosqlite's threads, connections opened, and
the collections and loop stalls of the window (bench/probe.py), with the delay
percentiles. CPU time is far steadier than latency on a shared machine; run the same
command before and after a change, a few minutes apart, and compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import psutil

from bench import callbacks, scenarios
from bench.procs import Children, install_signal_handlers, raise_fd_limit
from bench.run import SCRATCH
from bench.stack import Stack, running_stack
from bench.stats import summarize

WARM_UP = 50


def _thread_seconds(pid: int) -> dict[int, float]:
    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


async def _send(stack: Stack, batch: list[Any], rate: float) -> list[callbacks.Sent]:
    prepared = callbacks.prepare(
        batch, stack.webhook_url, stack.settings.authy_api_key, stack.settings.authy_app_id
    )
    return await callbacks.at_steady_rate(stack.webhook_url, prepared, rate)


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    children = Children()
    plan = scenarios.Plan.full()
    plan.database = args.database
    ctx = scenarios.Context(children=children, workdir=workdir, plan=plan)
    try:
        async with running_stack(children, workdir, ctx.options()) as stack:
            waiters = await scenarios._seed(ctx, stack, args.n, prefix="hot_")
            async with scenarios.waiting_pages(stack, waiters) as (fleet, _):
                await _send(stack, waiters[:WARM_UP], args.rate)
                await asyncio.sleep(1.0)
                batch = waiters[WARM_UP : WARM_UP + args.decisions]
                await stack.bench("POST", "reset")
                await stack.probe(reset=True)
                threads_before = _thread_seconds(stack.server_pid)
                sent = await _send(stack, batch, args.rate)
                threads_after = _thread_seconds(stack.server_pid)
                probe = await stack.probe()
                database = (await stack.bench("GET", "stats"))["database"]
                decided = await scenarios._await_receipts(fleet, sent, "approved", 5.0)
                delays, missing = scenarios._delays(sent, decided)
    finally:
        children.stop_all()
    count = max(1, len(sent))
    loop = threads_after.get(stack.server_pid, 0.0) - threads_before.get(stack.server_pid, 0.0)
    others = sum(
        seconds - threads_before.get(tid, 0.0)
        for tid, seconds in threads_after.items()
        if tid != stack.server_pid
    )
    return {
        "n": args.n,
        "decisions": len(sent),
        "rate": args.rate,
        "database": args.database,
        "per_decision": {
            "cpu_ms_loop_thread": round(1000 * loop / count, 3),
            "cpu_ms_other_threads": round(1000 * others / count, 3),
            **{key: round(value / count, 2) for key, value in database.items()},
            "gc_ms": round(sum(g["total_ms"] for g in probe["gc"].values()) / count, 3),
        },
        "gc": probe["gc"],
        "stalled_share": probe["stalled_share"],
        "delay_ms": summarize(delays),
        "missing": missing,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="waiting pages")
    parser.add_argument("--decisions", type=int, default=800)
    parser.add_argument("--rate", type=float, default=40.0, help="signed callbacks per second")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args(argv)
    if args.n < WARM_UP + args.decisions:
        parser.error(f"--n must be at least {WARM_UP} + --decisions")
    logging.basicConfig(level=logging.WARNING)
    install_signal_handlers()
    raise_fd_limit()
    result = asyncio.run(measure(args, SCRATCH / "hotpath"))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
