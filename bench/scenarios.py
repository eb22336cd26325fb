"""The measurements of issue 6, one function per figure family, each on a fresh stack.

- push: N waiting pages on websocket; memory and idle CPU with N waiting; then rounds of
  signed callbacks at a steady rate, each timed from just before the webhook request to
  the event at the page (and one round through the emulator's control API).
- polling: the same N pages polling /bench/status every 5 s or 1 s; the same decisions.
- throughput: callbacks flat out at a fixed concurrency, each decided and fanned out.
- storm: event-loop lag inside the server while 20 password logins/s run bcrypt (cost 12),
  with N pages waiting and decisions still being delivered.
- push with 2 Hypercorn workers and Redis fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import bcrypt
from sqlalchemy import func, select

from bench import baseline, callbacks, storm
from bench.clients import Fleet
from bench.procs import Children
from bench.seed import Waiter, seed_password_users, seed_waiters
from bench.stack import Stack, StackOptions, running_stack
from bench.stats import summarize
from push2fa.db import Database
from push2fa.models import LoginChallenge

log = logging.getLogger("bench")

CHALLENGE_TTL = 600  # seeded challenges outlive the longest scenario (the app's default is 120)
RECEIPT_GRACE = 5.0  # how long after the last decision a page may still report its event


@dataclass
class Plan:
    """How big and how long: `full()` for `make bench`, `quick()` for CI."""

    push_sizes: list[int]
    rounds: int
    decisions_per_round: int
    decision_rate: float
    settle_seconds: float
    idle_seconds: float
    emulator_round_size: int  # the N at which one round goes through the emulator; 0: none
    polling_sizes: list[int]
    polling_intervals: list[float]
    polling_decisions: int
    polling_window: float
    throughput_waiters: int
    throughput_concurrency: int
    storm_waiters: int
    storm_users: int  # one login each: the app's push budget limits repeats per account
    storm_rate: float
    storm_seconds: float
    storm_baseline_seconds: float
    redis_sizes: list[int]
    postgres_sizes: list[int] = field(default_factory=list)
    what_if_n: int = 0  # 0: no what-if experiments
    # Spread each N's decisions over this many minutes (rate lowered to fit, never raised);
    # 0: at decision_rate, as fast as the quick run wants.
    decision_minutes: float = 0.0
    redis_url: str = "redis://127.0.0.1:6379/0"
    database: str = "sqlite"
    is_quick: bool = False
    only: set[str] = field(default_factory=set)

    @classmethod
    def full(cls) -> Plan:
        return cls(
            push_sizes=[100, 1000, 5000, 10000],
            rounds=3,
            decisions_per_round=300,
            decision_rate=50.0,
            settle_seconds=3.0,
            idle_seconds=30.0,  # more than one Socket.IO ping interval (25 s)
            decision_minutes=1.0,
            emulator_round_size=1000,
            polling_sizes=[100, 1000],
            polling_intervals=[5.0, 1.0],
            polling_decisions=200,
            polling_window=10.0,
            throughput_waiters=2000,
            throughput_concurrency=16,
            storm_waiters=1000,
            storm_users=200,
            storm_rate=20.0,
            storm_seconds=10.0,
            storm_baseline_seconds=5.0,
            redis_sizes=[1000, 5000],
            postgres_sizes=[1000],
            what_if_n=5000,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            push_sizes=[20],
            rounds=1,
            decisions_per_round=20,
            decision_rate=50.0,
            settle_seconds=0.5,
            idle_seconds=2.0,
            emulator_round_size=0,
            polling_sizes=[20],
            polling_intervals=[1.0],
            polling_decisions=10,
            polling_window=2.0,
            throughput_waiters=100,
            throughput_concurrency=8,
            storm_waiters=60,
            storm_users=20,
            storm_rate=20.0,
            storm_seconds=1.0,
            storm_baseline_seconds=1.0,
            redis_sizes=[20],
            postgres_sizes=[20],
            is_quick=True,
        )

    def wants(self, name: str) -> bool:
        return not self.only or name in self.only


@dataclass
class Context:
    children: Children
    workdir: Path
    plan: Plan
    password_hash: str = ""

    def hash_for_users(self) -> str:
        """One cost-12 bcrypt hash of storm.PASSWORD, made once and given to every user."""
        if not self.password_hash:
            self.password_hash = bcrypt.hashpw(
                storm.PASSWORD.encode(), bcrypt.gensalt(rounds=12)
            ).decode()
        return self.password_hash

    def options(self, **changes: Any) -> StackOptions:
        return StackOptions(**({"database": self.plan.database} | changes))


@contextlib.asynccontextmanager
async def waiting_pages(
    stack: Stack, waiters: Sequence[Waiter], ramp: list[dict[str, Any]] | None = None
) -> AsyncIterator[tuple[Fleet, dict[str, Any]]]:
    """Open every waiter's socket (sampling the server's memory on the way up)."""
    fleet = Fleet(stack.app_url, waiters)
    sampler = asyncio.create_task(_sample_ramp(stack, ramp)) if ramp is not None else None
    try:
        connected = await fleet.connect()
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        yield fleet, connected
    finally:
        if sampler is not None and not sampler.done():
            sampler.cancel()
        await fleet.close()


async def _sample_ramp(stack: Stack, ramp: list[dict[str, Any]]) -> None:
    while True:
        stats = await stack.bench("GET", "stats")
        ramp.append({"websockets": stats["websockets_open"], "rss": stack.server_rss()})
        await asyncio.sleep(0.5)


async def _seed(ctx: Context, stack: Stack, count: int, prefix: str) -> list[Waiter]:
    started = time.monotonic()
    waiters = await seed_waiters(
        stack.settings,
        stack.minter,
        stack.emulator_api,
        count,
        prefix=prefix,
        password_hash=ctx.hash_for_users(),
        ttl=CHALLENGE_TTL,
    )
    log.info("seeded %d waiters in %.1f s", count, time.monotonic() - started)
    return waiters


async def _safety_net_polls(stack: Stack) -> int:
    """How many status polls the app's safety net has made so far (all challenges)."""
    db = Database(stack.settings.database_url)
    try:
        async with db.session() as session:
            total = (await session.execute(select(func.sum(LoginChallenge.poll_count)))).scalar()
    finally:
        await db.dispose()
    return int(total or 0)


async def _await_receipts(
    fleet: Fleet, sent: Sequence[callbacks.Sent], status: str, grace: float
) -> dict[str, dict[str, int]]:
    """Wait until every decided page has reported `status`, or `grace` s have passed."""
    wanted = {s.public_id for s in sent}
    deadline = time.monotonic() + grace
    while True:
        decided, _ = await fleet.receipts()
        if all(status in decided.get(public_id, {}) for public_id in wanted):
            return decided
        if time.monotonic() > deadline:
            return decided
        await asyncio.sleep(0.2)


def _delays(
    sent: Sequence[callbacks.Sent], decided: dict[str, dict[str, int]], status: str = "approved"
) -> tuple[list[float], int]:
    delays, missing = [], 0
    for item in sent:
        at = decided.get(item.public_id, {}).get(status)
        if at is None:
            missing += 1
        else:
            delays.append((at - item.sent_ns) / 1e6)
    return delays, missing


def _round_report(
    sent: Sequence[callbacks.Sent], delays: list[float], missing: int
) -> dict[str, Any]:
    return {
        "decisions": len(sent),
        "received": len(delays),
        "missing": missing,
        "webhook_statuses": sorted({s.http_status for s in sent}),
        "webhook_notes": sorted({s.note for s in sent}),
        "webhook_response_ms": summarize((s.answered_ns - s.sent_ns) / 1e6 for s in sent),
        "delay_ms": summarize(delays),
    }


def probe_split(
    waiters: Sequence[Waiter], plan: Plan, n: int, extra: int = 0
) -> tuple[list[Waiter], list[Waiter]]:
    """(pages that will be decided, pages that only wait). The decided ones live in a
    small probe process of their own, so their event timings do not queue behind
    thousands of idle sockets in the same client loop."""
    pool = list(waiters)
    random.Random(n).shuffle(pool)
    per_round = max(1, min(plan.decisions_per_round, (len(pool) - extra) // max(1, plan.rounds)))
    count = min(len(pool), extra + per_round * plan.rounds)
    return pool[:count], pool[count:]


@contextlib.asynccontextmanager
async def probe_and_bulk(
    stack: Any, probe: Sequence[Waiter], bulk: Sequence[Waiter], ramp: Any = None
) -> AsyncIterator[tuple[Fleet, dict[str, Any]]]:
    """Open the idle bulk first (sampling memory on the way), then the probe pages."""
    async with contextlib.AsyncExitStack() as pages:
        replies = []
        if bulk:
            _, bulk_connected = await pages.enter_async_context(waiting_pages(stack, bulk, ramp))
            replies.append(bulk_connected)
        fleet, probe_connected = await pages.enter_async_context(waiting_pages(stack, probe))
        replies.append(probe_connected)
        yield (
            fleet,
            {
                "connected": sum(r["connected"] for r in replies),
                "failed": sum(r["failed"] for r in replies),
                "errors": [e for r in replies for e in r["errors"]][:5],
                "initial_pending": sum(r["initial_pending"] for r in replies),
                "seconds": round(sum(r["seconds"] for r in replies), 3),
                "processes": sum(r["processes"] for r in replies),
                "probe_pages": len(probe),
            },
        )


async def _decide_rounds(
    stack: Any, fleet: Fleet, pool: list[Waiter], plan: Plan, rounds: int
) -> tuple[list[dict[str, Any]], list[float]]:
    per_round = max(1, min(plan.decisions_per_round, len(pool) // max(1, rounds)))
    rate = plan.decision_rate
    if plan.decision_minutes > 0:
        rate = min(rate, per_round * rounds / (60 * plan.decision_minutes))
    reports, pooled = [], []
    for number in range(rounds):
        batch = pool[number * per_round : (number + 1) * per_round]
        if not batch:
            break
        prepared = callbacks.prepare(
            batch, stack.webhook_url, stack.settings.authy_api_key, stack.settings.authy_app_id
        )
        sent = await callbacks.at_steady_rate(stack.webhook_url, prepared, rate)
        decided = await _await_receipts(fleet, sent, "approved", RECEIPT_GRACE)
        delays, missing = _delays(sent, decided)
        pooled.extend(delays)
        reports.append(_round_report(sent, delays, missing))
        log.info("round %d: %s", number + 1, reports[-1]["delay_ms"])
        await asyncio.sleep(1.0)
    return reports, pooled


# --- push --------------------------------------------------------------------------------


async def push_delay(
    ctx: Context, n: int, options: StackOptions | None = None, tag: str = ""
) -> dict[str, Any]:
    plan = ctx.plan
    opts = options or ctx.options()
    label = f"push-{n}-w{max(1, opts.workers)}{'-redis' if opts.redis_url else ''}{tag}"
    async with running_stack(ctx.children, ctx.workdir / label, opts) as stack:
        waiters = await _seed(ctx, stack, n, prefix=f"w{n}_")
        await asyncio.sleep(plan.settle_seconds)
        rss_before = stack.server_rss()
        ramp: list[dict[str, Any]] = [{"websockets": 0, "rss": rss_before}]
        emulator_share = n // 4 if n == plan.emulator_round_size else 0
        probe, bulk = probe_split(waiters, plan, n, emulator_share)
        async with probe_and_bulk(stack, probe, bulk, ramp) as (fleet, connected):
            log.info("%s: connected %s", label, connected)
            handshake = await stack.bench("GET", "stats")
            await asyncio.sleep(plan.settle_seconds)
            rss_after = stack.server_rss()
            ramp.append({"websockets": connected["connected"], "rss": rss_after})
            await stack.bench("POST", "reset")
            await stack.probe(reset=True)
            polls_before = await _safety_net_polls(stack)
            idle_cpu = await stack.cpu_percent_over(plan.idle_seconds)
            idle_probe = await stack.probe()
            polls_after = await _safety_net_polls(stack)
            idle_traffic = await stack.bench("GET", "stats")
            pool = probe
            # The same probe as the bare stack's (bench/probe.py) times stalls and
            # collections while the decisions flow; nothing else samples the loop.
            await stack.bench("POST", "reset")
            await stack.probe(reset=True)
            cpu_before = stack.server_cpu_seconds()
            rounds, pooled = await _decide_rounds(
                stack, fleet, pool[emulator_share:], plan, plan.rounds
            )
            cpu_rounds = stack.server_cpu_seconds() - cpu_before
            rounds_probe = await stack.probe()
            rounds_database = (await stack.bench("GET", "stats"))["database"]
            emulator_round = None
            if emulator_share:
                batch = pool[: min(emulator_share, plan.decisions_per_round)]
                sent = await callbacks.via_emulator(stack.emulator_api, batch, plan.decision_rate)
                decided = await _await_receipts(fleet, sent, "approved", RECEIPT_GRACE)
                delays, missing = _delays(sent, decided)
                emulator_round = _round_report(sent, delays, missing)
            decided, _ = await fleet.receipts()
            client_pauses = fleet.client_pauses
    counts = idle_traffic["counts"]
    decisions = sum(r["decisions"] for r in rounds)
    missing_total = sum(r["missing"] for r in rounds)
    idle_http = sum(v for k, v in counts.items() if not k.startswith(("ws_", "harness")))
    return {
        "n": n,
        "workers": max(1, opts.workers),
        "redis": bool(opts.redis_url),
        "database": opts.database,
        "client_processes": connected["processes"],
        "connect": connected,
        "all_got_initial_state": connected["initial_pending"] == n,
        "handshakes": handshake["counts"].get("websocket_handshake", 0),
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "rss_per_waiter_bytes": round((rss_after - rss_before) / max(1, connected["connected"])),
        "ramp": ramp,
        "idle": {
            "cpu_percent": idle_cpu,
            "http_requests": idle_http,
            "ws_frames_in": counts.get("ws_frames_in", 0),
            "ws_frames_out": counts.get("ws_frames_out", 0),
            "safety_net_polls": polls_after - polls_before,
        },
        "idle_probe": idle_probe,
        "rounds": rounds,
        "delay_ms": summarize(pooled),
        "shares": baseline.shares_over(pooled, missing_total),
        "missing": missing_total,
        "cpu_ms_per_decision": round(1000 * cpu_rounds / max(1, decisions), 3),
        "client_pauses": client_pauses,
        "rounds_probe": rounds_probe,
        "database_per_decision": {
            key: round(count / max(1, decisions), 2) for key, count in rounds_database.items()
        },
        "decisions": decisions,
        "received": sum(r["received"] for r in rounds),
        "every_decided_waiter_got_its_event": all(r["missing"] == 0 for r in rounds),
        "emulator_round": emulator_round,
        "pages_with_a_decision": len(decided),
    }


# --- polling -----------------------------------------------------------------------------


async def polling_delay(ctx: Context, n: int, interval: float) -> dict[str, Any]:
    plan = ctx.plan
    label = f"poll-{n}-{interval:g}s"
    decisions = min(plan.polling_decisions, n)
    decide_seconds = decisions / plan.decision_rate
    window = max(plan.polling_window, 2 * interval)
    bound = interval + 1 + window + decide_seconds + 2 * interval + RECEIPT_GRACE + 5
    async with running_stack(ctx.children, ctx.workdir / label, ctx.options()) as stack:
        waiters = await _seed(ctx, stack, n, prefix=f"p{n}_")
        fleet = Fleet(stack.app_url, waiters)
        try:
            await fleet.start_polling(interval, bound)
            started = time.monotonic()
            await asyncio.sleep(interval + 1)  # every page has made its first poll
            await stack.bench("POST", "reset")
            cpu = await stack.cpu_percent_over(window)
            counts = (await stack.bench("GET", "stats"))["counts"]
            polls_per_second = counts.get("status_poll", 0) / cpu["seconds"]
            pool = list(waiters)
            random.Random(n).shuffle(pool)
            batch = pool[:decisions]
            prepared = callbacks.prepare(
                batch,
                stack.webhook_url,
                stack.settings.authy_api_key,
                stack.settings.authy_app_id,
            )
            sent = await callbacks.at_steady_rate(stack.webhook_url, prepared, plan.decision_rate)
            decided = await _await_receipts(fleet, sent, "approved", 2 * interval + RECEIPT_GRACE)
            _, polls = await fleet.receipts()
            poll_totals = await fleet.stop_polling()
        finally:
            await fleet.close()
    delays, missing = _delays(sent, decided)
    waited = [(s.sent_ns / 1e9 - started) for s in sent]
    return {
        "n": n,
        "interval_s": interval,
        "client_processes": len(fleet.shares),
        "server_requests_per_second": round(polls_per_second, 1),
        "expected_requests_per_second": round(n / interval, 1),
        "cpu_percent": cpu,
        "decisions": len(sent),
        "received": len(delays),
        "missing": missing,
        "every_decided_waiter_got_its_event": missing == 0,
        "delay_ms": summarize(delays),
        "polls_per_login": summarize(float(polls.get(s.public_id, 0)) for s in sent),
        "mean_wait_before_decision_s": round(sum(waited) / len(waited), 2),
        "poll_errors": poll_totals["errors"],
    }


# --- webhook throughput -----------------------------------------------------------------


async def webhook_throughput(ctx: Context) -> dict[str, Any]:
    plan = ctx.plan
    n = plan.throughput_waiters
    async with running_stack(ctx.children, ctx.workdir / f"throughput-{n}", ctx.options()) as stack:
        waiters = await _seed(ctx, stack, n, prefix=f"t{n}_")
        async with waiting_pages(stack, waiters) as (fleet, connected):
            prepared = callbacks.prepare(
                waiters,
                stack.webhook_url,
                stack.settings.authy_api_key,
                stack.settings.authy_app_id,
            )
            cpu0, t0 = stack.server_cpu_seconds(), time.monotonic()
            sent = await callbacks.flat_out(
                stack.webhook_url, prepared, plan.throughput_concurrency
            )
            elapsed = time.monotonic() - t0
            cpu = 100 * (stack.server_cpu_seconds() - cpu0) / elapsed
            decided = await _await_receipts(fleet, sent, "approved", RECEIPT_GRACE * 2)
    delays, missing = _delays(sent, decided)
    ok = [s for s in sent if s.http_status == 200 and s.note == "decided"]
    first = min(s.sent_ns for s in sent)
    last_event = max(
        (
            decided[s.public_id]["approved"]
            for s in sent
            if "approved" in decided.get(s.public_id, {})
        ),
        default=first,
    )
    return {
        "n": n,
        "concurrency": plan.throughput_concurrency,
        "callbacks": len(sent),
        "decided": len(ok),
        "received": len(delays),
        "missing": missing,
        "connected": connected["connected"],
        "verified_decided_per_second": round(len(ok) / elapsed, 1),
        "fanned_out_per_second": round(len(delays) / max(1e-9, (last_event - first) / 1e9), 1),
        "server_cpu_percent": round(cpu, 1),
        "webhook_response_ms": summarize((s.answered_ns - s.sent_ns) / 1e6 for s in sent),
        "delay_ms": summarize(delays),
    }


# --- bcrypt storm ------------------------------------------------------------------------


async def _decide_during(
    stack: Stack, fleet: Fleet, batch: list[Waiter], rate: float
) -> dict[str, Any]:
    prepared = callbacks.prepare(
        batch, stack.webhook_url, stack.settings.authy_api_key, stack.settings.authy_app_id
    )
    sent = await callbacks.at_steady_rate(stack.webhook_url, prepared, rate)
    decided = await _await_receipts(fleet, sent, "approved", RECEIPT_GRACE)
    delays, missing = _delays(sent, decided)
    return _round_report(sent, delays, missing)


async def _sample_pool(stack: Stack, samples: list[int]) -> None:
    """The app's database connections in use, once a second (the pool has a limit)."""
    while True:
        stats = await stack.bench("GET", "stats")
        samples.append(stats["db_pool"]["checked_out"])
        await asyncio.sleep(1.0)


async def bcrypt_storm(ctx: Context, executor_threads: int = 0) -> dict[str, Any]:
    plan = ctx.plan
    n = plan.storm_waiters
    rate = plan.decision_rate / 2.5  # 20 decisions/s alongside 20 logins/s
    # Every login comes from 127.0.0.1 here, so the per-IP limiter would answer most of them
    # with 429 before bcrypt runs; in production the storm comes from many addresses.
    env = {"PUSH2FA_RATE_LIMITS": "0"}
    if executor_threads:
        env["BENCH_DEFAULT_EXECUTOR_THREADS"] = str(executor_threads)
    label = f"storm-{n}{f'-threads{executor_threads}' if executor_threads else ''}"
    async with running_stack(
        ctx.children, ctx.workdir / label, ctx.options(extra_env=env)
    ) as stack:
        usernames = await seed_password_users(
            stack.settings,
            stack.emulator_api,
            plan.storm_users,
            prefix="storm_",
            password_hash=ctx.hash_for_users(),
        )
        waiters = await _seed(ctx, stack, n, prefix=f"s{n}_")
        pool = list(waiters)
        random.Random(n).shuffle(pool)
        base_count = max(1, int(rate * plan.storm_baseline_seconds))
        storm_count = max(1, int(rate * plan.storm_seconds))
        async with waiting_pages(stack, waiters) as (fleet, _):
            await stack.bench("POST", "lag/start")
            await stack.bench("POST", "reset")
            quiet = await _decide_during(stack, fleet, pool[:base_count], rate)
            await asyncio.sleep(max(0.0, plan.storm_baseline_seconds - base_count / rate))
            lag_quiet = (await stack.bench("GET", "stats"))["lag"]
            await stack.bench("POST", "reset")
            cpu0, t0 = stack.server_cpu_seconds(), time.monotonic()
            pool_samples: list[int] = []
            watcher = asyncio.create_task(_sample_pool(stack, pool_samples))
            logins, during = await asyncio.gather(
                storm.storm(stack.app_url, usernames, plan.storm_rate, plan.storm_seconds),
                _decide_during(stack, fleet, pool[base_count : base_count + storm_count], rate),
            )
            elapsed = time.monotonic() - t0
            cpu = 100 * (stack.server_cpu_seconds() - cpu0) / elapsed
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            stats = await stack.bench("GET", "stats")
            lag_storm = stats["lag"]
            pool_limit = stats["db_pool"]["limit"]
            await stack.bench("POST", "lag/stop")
    return {
        "n": n,
        "executor_threads": executor_threads or "default",
        "bcrypt_cost": 12,
        "decision_rate": rate,
        "quiet": {"lag_ms": lag_quiet, "push": quiet},
        "storm": {
            "lag_ms": lag_storm,
            "push": during,
            "logins": logins,
            "server_cpu_percent": round(cpu, 1),
            "seconds": round(elapsed, 1),
            "db_connections_checked_out": {
                "max": max(pool_samples, default=0),
                "pool_limit": pool_limit,
                "samples": pool_samples,
            },
        },
    }


# --- two workers + Redis -----------------------------------------------------------------


async def redis_available(url: str) -> bool:
    try:
        import redis.asyncio as aioredis
    except ImportError:
        return False
    client = aioredis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


# --- what-if experiments -----------------------------------------------------------------

WHAT_IF_STORM_THREADS = 1  # bcrypt may use one core of two; the event loop keeps the other
WHAT_IF_QUIET_SAFETY_NET = "60"  # first status poll after 60 s instead of 3 s


def what_if(ctx: Context) -> list[tuple[str, str, Callable[[], Awaitable[dict[str, Any]]]]]:
    """Changes proposed to the app, measured here without editing it, each beside the
    figure it would improve: (name, the figure it compares with, the scenario to run).
    Each is an ordinary scenario with one setting changed."""
    plan = ctx.plan
    n = plan.what_if_n
    quiet = ctx.options(extra_env={"PUSH2FA_STATUS_POLL_DELAY": WHAT_IF_QUIET_SAFETY_NET})
    runs: list[tuple[str, str, Callable[[], Awaitable[dict[str, Any]]]]] = [
        (
            f"bcrypt storm, to_thread pool of {WHAT_IF_STORM_THREADS} thread",
            "storm",
            partial(bcrypt_storm, ctx, executor_threads=WHAT_IF_STORM_THREADS),
        ),
        (
            f"N = {n:,}, safety-net status poll first due after 60 s",
            f"push:{n}",
            partial(push_delay, ctx, n, quiet, tag="-quietnet"),
        ),
    ]
    runs.append(
        (
            f"N = {n:,}, gc.freeze() after start-up",
            f"push:{n}",
            partial(
                push_delay, ctx, n, ctx.options(extra_env={"BENCH_GC_FREEZE": "1"}), tag="-gcfreeze"
            ),
        )
    )
    return runs
