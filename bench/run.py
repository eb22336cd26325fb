"""`python -m bench.run [--quick]`: run the benchmarks, write the results, render the report.

The full run (`make bench`, about 15 minutes on 2 cores) writes
bench/results/<YYYY-MM-DD>.json and regenerates docs/benchmarks.md and its charts. The
quick run (`make bench-quick`, under a minute, N=20) exercises every path for CI and
writes only under bench/results/tmp/, so it never replaces the published figures.
A scenario that fails is recorded with its error and the run goes on: a report that says
what did not work beats no report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import baseline, machine, scenarios, targets
from bench.procs import Children, install_signal_handlers, raise_fd_limit
from bench.stack import StackOptions
from push2fa.config import PROJECT_ROOT

log = logging.getLogger("bench")

RESULTS = PROJECT_ROOT / "bench" / "results"
SCRATCH = RESULTS / "tmp"
DOC = PROJECT_ROOT / "docs" / "benchmarks.md"
CHARTS = PROJECT_ROOT / "docs" / "benchmarks"
SCENARIOS = ("push", "postgres", "redis", "polling", "throughput", "storm", "whatif")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, under a minute (CI)")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--sizes", default="", help="comma-separated N for push (and bare)")
    parser.add_argument("--postgres-sizes", default=None, help="N for the PostgreSQL run")
    parser.add_argument("--redis-sizes", default=None, help="N for 2 workers + Redis")
    parser.add_argument(
        "--decision-minutes",
        type=float,
        default=None,
        help="spread each N's decisions over this long (full run: 1)",
    )
    parser.add_argument("--results", type=Path, help="where to write the JSON results")
    parser.add_argument("--no-report", action="store_true", help="skip docs and charts")
    parser.add_argument("--keep", action="store_true", help="keep logs and databases")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=None,
        help="seconds to wait for other processes to go quiet first (full run: 300)",
    )
    args = parser.parse_args(argv)
    unknown = {s for s in args.only.split(",") if s} - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


FAILURES: list[str] = []


async def _guarded(name: str, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run one scenario, noting how busy the rest of the machine was meanwhile."""
    started = time.monotonic()
    log.info("--- %s", name)
    with machine.LoadWatcher() as load:
        try:
            result = await work()
        except Exception as exc:
            log.error("%s failed: %r", name, exc)
            FAILURES.append(name)
            result = {"scenario": name, "error": repr(exc), "traceback": traceback.format_exc()}
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    result["machine_load"] = load.summary()
    return result


def wait_until_quiet(limit: float, threshold: float = 25.0) -> dict[str, float]:
    """Give other users of the machine up to `limit` seconds to finish (bounded)."""
    started = time.monotonic()
    others = machine.others_busy_percent()
    while others > threshold and time.monotonic() - started < limit:
        log.info("other processes use %.0f %% of a core; waiting for a quieter machine", others)
        time.sleep(10)
        others = machine.others_busy_percent()
    return {"waited_seconds": round(time.monotonic() - started, 1), "others_percent": others}


async def _against_bare(
    ctx: scenarios.Context,
    key: str,
    sizes: list[int],
    options: StackOptions,
    label: str,
) -> dict[str, Any]:
    """Each N on push2fa with `options`, then at once on the bare stack with as many
    workers (and Redis between them when push2fa has it): `key`, `key`_bare and the
    ratios, all from the same few minutes of the same machine."""
    ours: list[dict[str, Any]] = []
    reference: list[dict[str, Any]] = []
    for n in sizes:
        ours.append(
            await _guarded(f"{label} N={n}", partial(scenarios.push_delay, ctx, n, options))
        )
        reference.append(
            await _guarded(
                f"bare stack ({label}) N={n}",
                partial(
                    baseline.bare_push_delay,
                    ctx.children,
                    ctx.workdir,
                    ctx.plan,
                    n,
                    options.workers,
                    options.redis_url,
                ),
            )
        )
    bare_key = "bare" if key == "push" else f"{key}_bare"
    versus_key = "versus_bare" if key == "push" else f"versus_bare_{key}"
    return {key: ours, bare_key: reference, versus_key: baseline.ratios(ours, reference)}


async def run_plan(ctx: scenarios.Context) -> dict[str, Any]:
    plan = ctx.plan
    results: dict[str, Any] = {}
    if plan.wants("push"):
        # Each N on push2fa, then at once on the bare stack: the reference, same run.
        results.update(
            await _against_bare(ctx, "push", plan.push_sizes, ctx.options(), label="push")
        )
    if plan.wants("postgres") and plan.postgres_sizes:
        results.update(
            await _against_bare(
                ctx,
                "postgres",
                plan.postgres_sizes,
                ctx.options(database="postgres"),
                label="push on PostgreSQL",
            )
        )
    if plan.wants("redis"):
        if await scenarios.redis_available(plan.redis_url):
            results.update(
                await _against_bare(
                    ctx,
                    "redis",
                    plan.redis_sizes,
                    ctx.options(workers=2, redis_url=plan.redis_url),
                    label="2 workers + Redis",
                )
            )
        else:
            results["redis"] = [{"scenario": "redis", "error": f"no Redis at {plan.redis_url}"}]
    if plan.wants("polling"):
        results["polling"] = [
            await _guarded(
                f"polling N={n} every {i:g} s", partial(scenarios.polling_delay, ctx, n, i)
            )
            for n in plan.polling_sizes
            for i in plan.polling_intervals
        ]
    if plan.wants("throughput"):
        results["throughput"] = await _guarded(
            "webhook throughput", partial(scenarios.webhook_throughput, ctx)
        )
    if plan.wants("storm"):
        results["storm"] = await _guarded("bcrypt storm", partial(scenarios.bcrypt_storm, ctx))
    if plan.wants("whatif") and plan.what_if_n:
        results["whatif"] = [
            {"name": name, "compare_with": baseline, "result": await _guarded(name, work)}
            for name, baseline, work in scenarios.what_if(ctx)
        ]
    return results


def _log_to_stderr() -> None:
    """The harness's own log; the app's loggers (also imported here) stay out of it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s bench: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def _results_file(stamp: datetime) -> Path:
    """The day's results file; a second full run that day gets its start time too, so it
    never overwrites the first (the record an earlier change's figures point to)."""
    daily = RESULTS / f"{stamp:%Y-%m-%d}.json"
    return daily if not daily.exists() else RESULTS / f"{stamp:%Y-%m-%dT%H%M}.json"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _log_to_stderr()
    install_signal_handlers()
    raise_fd_limit()
    plan = scenarios.Plan.quick() if args.quick else scenarios.Plan.full()
    plan.only = {s for s in args.only.split(",") if s}
    plan.database = args.database
    if args.sizes:
        plan.push_sizes = [int(size) for size in args.sizes.split(",")]
    if args.postgres_sizes is not None:
        plan.postgres_sizes = [int(size) for size in args.postgres_sizes.split(",") if size]
    if args.redis_sizes is not None:
        plan.redis_sizes = [int(size) for size in args.redis_sizes.split(",") if size]
    if args.decision_minutes is not None:
        plan.decision_minutes = args.decision_minutes
    stamp = datetime.now(UTC)
    workdir = SCRATCH / f"run-{stamp:%Y%m%d-%H%M%S}"
    children = Children()
    ctx = scenarios.Context(children=children, workdir=workdir, plan=plan)
    quiet = wait_until_quiet(
        args.wait_quiet if args.wait_quiet is not None else (0.0 if args.quick else 300.0)
    )
    started = time.monotonic()
    try:
        results = asyncio.run(run_plan(ctx))
    finally:
        children.stop_all()
    document = {
        "date": f"{stamp:%Y-%m-%d}",
        "started_at": stamp.isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "wall_seconds": round(time.monotonic() - started, 1),
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine.describe() | {"before_start": quiet},
        "plan": {k: v for k, v in vars(plan).items() if k != "only"} | {"only": sorted(plan.only)},
        **results,
    }
    document["targets"] = targets.evaluate(document)
    document["targets_13"] = targets.evaluate(document, targets.TARGETS_13)
    target = args.results or (
        SCRATCH / f"{stamp:%Y-%m-%d}-quick.json" if args.quick else _results_file(stamp)
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    log.info("results: %s (%.0f s)", target, document["wall_seconds"])
    if not args.no_report:
        from bench import report

        doc, charts = (
            (SCRATCH / "benchmarks.md", SCRATCH / "charts") if args.quick else (DOC, CHARTS)
        )
        report.write(document, target, doc, charts)
        log.info("report: %s", doc)
    if FAILURES:
        log.error("failed: %s (logs kept in %s)", ", ".join(FAILURES), workdir)
    elif not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
