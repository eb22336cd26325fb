"""`python -m bench.profile [--n 1000] [--callbacks 1000]`: where the app's time goes while
it verifies, decides and fans out callbacks, sampled by py-spy from outside the process.

It starts the same stack as the benchmark, opens N waiting pages, and records the server
with `py-spy record --format raw` while callbacks arrive flat out (or, with --idle, while
nothing happens but the N pages waiting); with --bare, the bare reference stack the same
way, for a side-by-side of where each spends its time. The collapsed stacks are written
next to a summary of the functions with the most samples (inclusive and self), which is
the evidence behind any change the benchmark report proposes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import baseline, callbacks, scenarios
from bench.procs import Children, install_signal_handlers, raise_fd_limit
from bench.run import SCRATCH
from bench.stack import running_stack

log = logging.getLogger("bench")


LOOP_MARK = "run_forever ("
THREAD_ROOT = "Thread._bootstrap ("
GREENLET_ROOT = "(greenlet on the loop's thread: SQLAlchemy's sync side)"
IDLE_LEAVES = ("select (selectors.py", "EpollSelector.select (selectors.py")


def summarize_collapsed(path: Path, top: int = 25) -> dict[str, Any]:
    """Where the event-loop thread spends its busy time, from py-spy's collapsed stacks.

    Only stacks under the loop's `run_forever` count (the aiosqlite and to_thread workers
    are other threads), and samples waiting in the selector are idle, not work. SQLAlchemy's
    asyncio layer runs its sync side in greenlets on the loop's thread: py-spy shows those
    stacks without the loop's frames beneath them, so a stack that starts anywhere but a
    thread's bootstrap is the loop's work too (counted under GREENLET_ROOT).
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    busy = idle = other_threads = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[0].startswith(THREAD_ROOT):
            if not any(LOOP_MARK in frame for frame in frames):
                other_threads += count
                continue
        elif not any(LOOP_MARK in frame for frame in frames):
            frames = [GREENLET_ROOT, *frames]
        if frames[-1].startswith(IDLE_LEAVES):
            idle += count
            continue
        busy += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(count: int) -> float:
        return round(100 * count / max(1, busy), 1)

    return {
        "loop_busy_percent": round(100 * busy / max(1, busy + idle), 1),
        "loop_samples": busy + idle,
        "other_thread_samples": other_threads,
        "inclusive_percent_of_busy": [(f, share(c)) for f, c in inclusive.most_common(top)],
        "self_percent_of_busy": [(f, share(c)) for f, c in own.most_common(top)],
    }


async def profile(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    children = Children()
    plan = scenarios.Plan.full()
    ctx = scenarios.Context(children=children, workdir=out / "stack", plan=plan)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    try:
        async with contextlib.AsyncExitStack() as running:
            stack: Any
            if args.bare:
                stack = await running.enter_async_context(
                    baseline.running_bare(children, out / "bare")
                )
                waiters = baseline.bare_waiters(args.n)
            else:
                stack = await running.enter_async_context(
                    running_stack(children, out / "stack", ctx.options())
                )
                waiters = await scenarios._seed(ctx, stack, args.n, prefix="prof_")
            async with scenarios.waiting_pages(stack, waiters) as (fleet, connected):
                log.info("connected %s", connected)
                raw = out / ("idle.txt" if args.idle else "callbacks.txt")
                recorder = subprocess.Popen(
                    [
                        py_spy,
                        "record",
                        "--pid",
                        str(stack.server_pid),
                        "--format",
                        "raw",
                        "--rate",
                        "250",
                        "--output",
                        str(raw),
                        "--duration",
                        str(args.seconds),
                        *(["--idle"] if args.idle else []),
                        *(["--native"] if args.native else []),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                try:
                    await asyncio.sleep(1.0)
                    started = time.monotonic()
                    if args.idle:
                        sent: list[callbacks.Sent] = []
                    else:
                        batch = waiters[: args.callbacks]
                        prepared = callbacks.prepare(
                            batch,
                            stack.webhook_url,
                            stack.settings.authy_api_key,
                            stack.settings.authy_app_id,
                        )
                        if args.rate:
                            sent = await callbacks.at_steady_rate(
                                stack.webhook_url, prepared, args.rate
                            )
                        else:
                            sent = await callbacks.flat_out(
                                stack.webhook_url, prepared, args.concurrency
                            )
                    elapsed = time.monotonic() - started
                    await asyncio.to_thread(recorder.wait, args.seconds + 30)
                finally:
                    if recorder.poll() is None:
                        recorder.kill()
                        recorder.wait(5)
    finally:
        children.stop_all()
    summary: dict[str, Any] = (
        summarize_collapsed(raw) if raw.exists() else {"error": "py-spy wrote nothing"}
    )
    summary.update(
        n=args.n,
        callbacks=len(sent),
        callbacks_per_second=round(len(sent) / elapsed, 1) if sent else 0,
        collapsed_stacks=str(raw),
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="waiting pages")
    parser.add_argument("--callbacks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=0, help="steady callbacks/s (0: flat out)")
    parser.add_argument(
        "--bare", action="store_true", help="profile the bare reference stack (bench/bare.py)"
    )
    parser.add_argument("--seconds", type=int, default=10, help="py-spy recording length")
    parser.add_argument("--idle", action="store_true", help="profile N idle pages instead")
    parser.add_argument("--native", action="store_true", help="include C frames (sqlite3)")
    parser.add_argument("--out", type=Path, default=SCRATCH / "profile")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    install_signal_handlers()
    raise_fd_limit()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = asyncio.run(profile(args, args.out))
    target = args.out / ("idle-summary.json" if args.idle else "summary.json")
    target.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
