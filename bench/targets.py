"""The issue's targets, checked against a run's results (measured, never asserted).

Each target names where its figure comes from, so a missing scenario reads as "not
measured" rather than as a pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import probe

Results = dict[str, Any]


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measure: Callable[[Results], float | None]
    passes: Callable[[float], bool]
    unit: str


def _ok(entries: Any) -> list[dict[str, Any]]:
    return [e for e in entries or [] if isinstance(e, dict) and "error" not in e]


def _push(results: Results, n: int, key: str = "push") -> dict[str, Any] | None:
    """The run's entry at N of `key`'s scenario (push2fa's push, or "bare")."""
    return next((e for e in _ok(results.get(key)) if e["n"] == n), None)


def _largest_push(results: Results) -> dict[str, Any] | None:
    entries = _ok(results.get("push"))
    return max(entries, key=lambda e: e["n"]) if entries else None


def _push_p99(n: int) -> Callable[[Results], float | None]:
    def measure(results: Results) -> float | None:
        entry = _push(results, n)
        return entry["delay_ms"]["p99"] if entry else None

    return measure


def _polling_ratio(interval: float) -> Callable[[Results], float | None]:
    """Median polling delay over median push delay, at the largest N both measured."""

    def measure(results: Results) -> float | None:
        polls = [p for p in _ok(results.get("polling")) if p["interval_s"] == interval]
        for poll in sorted(polls, key=lambda p: -p["n"]):
            push = _push(results, poll["n"])
            if push and push["delay_ms"]["median"] and poll["delay_ms"]["median"]:
                return float(poll["delay_ms"]["median"] / push["delay_ms"]["median"])
        return None

    return measure


def _memory(results: Results) -> float | None:
    entry = _largest_push(results)
    return entry["rss_per_waiter_bytes"] / 1024 if entry else None


def _idle_cpu(results: Results) -> float | None:
    entry = _push(results, 10_000) or _largest_push(results)
    return entry["idle"]["cpu_percent"]["server"] if entry else None


def _storm_lag(results: Results) -> float | None:
    storm = results.get("storm")
    if not isinstance(storm, dict) or "error" in storm:
        return None
    p99 = storm["storm"]["lag_ms"]["p99"]
    return None if p99 is None else float(p99)


TARGETS = (
    Target(
        "p99 webhook → browser, 1,000 waiting", "≤ 10 ms", _push_p99(1000), lambda v: v <= 10, "ms"
    ),
    Target(
        "p99 webhook → browser, 10,000 waiting",
        "≤ 50 ms",
        _push_p99(10_000),
        lambda v: v <= 50,
        "ms",
    ),
    Target(
        "median delay, 5 s polling ÷ push", "≥ 100×", _polling_ratio(5.0), lambda v: v >= 100, "×"
    ),
    Target(
        "median delay, 1 s polling ÷ push", "≥ 20×", _polling_ratio(1.0), lambda v: v >= 20, "×"
    ),
    Target(
        "server memory per waiting browser (largest N)", "≤ 40 KB", _memory, lambda v: v <= 40, "KB"
    ),
    Target("idle server CPU with 10,000 waiting", "< 5 %", _idle_cpu, lambda v: v < 5, "%"),
    Target(
        "event-loop lag p99 during the bcrypt storm", "≤ 20 ms", _storm_lag, lambda v: v <= 20, "ms"
    ),
)


def _versus(key: str, n: int | None, figure: str, part: str = "ratio") -> Callable[[Results], Any]:
    """A figure of the push2fa / bare comparison (bench.baseline.ratios) at N (None: the
    largest N measured)."""

    def measure(results: Results) -> float | None:
        rows = results.get(key) or []
        if n is not None:
            rows = [r for r in rows if r["n"] == n]
        if not rows:
            return None
        cell = max(rows, key=lambda r: r["n"])["figures"].get(figure) or {}
        value = cell.get(part)
        return None if value is None else float(value)

    return measure


def _memory_over_bare(results: Results) -> float | None:
    rows = results.get("versus_bare") or []
    if not rows:
        return None
    cell = max(rows, key=lambda r: r["n"])["figures"]["rss_per_waiter_bytes"]
    if cell.get("push2fa") is None or cell.get("bare") is None:
        return None
    return float(cell["push2fa"] - cell["bare"]) / 1024


def _stalled_idle(n: int) -> Callable[[Results], float | None]:
    """Time stalled while idle at N, push2fa over bare. The probe only counts stalls over
    its threshold, so a bare stack that never stalled is taken as one threshold-long stall
    in its window: push2fa stalling where bare did not reads as a multiple, never as "no
    ratio" (which would hide it)."""

    def measure(results: Results) -> float | None:
        entries = (_push(results, n), _push(results, n, "bare"))
        ours, theirs = ((e.get("idle_probe") or {}) if e else {} for e in entries)
        if not ours.get("seconds") or not theirs.get("seconds"):
            return None
        floor = probe.THRESHOLD / theirs["seconds"]
        return float(ours["stalled_share"] / max(theirs["stalled_share"], floor))

    return measure


def _within(limit: float) -> Callable[[float], bool]:
    return lambda v: v <= limit


# Issue 13: one worker, every figure against the bare stack measured in the same run.
TARGETS_13 = (
    Target(
        "delay p50 ÷ bare, 1,000 waiting",
        "≤ 1.5×",
        _versus("versus_bare", 1000, "delay_p50_ms"),
        _within(1.5),
        "×",
    ),
    Target(
        "delay p99, 1,000 waiting",
        "≤ 10 ms",
        _versus("versus_bare", 1000, "delay_p99_ms", "push2fa"),
        _within(10),
        "ms",
    ),
    Target(
        "delay p99, 10,000 waiting",
        "≤ 50 ms",
        _versus("versus_bare", 10_000, "delay_p99_ms", "push2fa"),
        _within(50),
        "ms",
    ),
    Target(
        "server CPU per decision ÷ bare, 1,000 waiting",
        "≤ 1.5×",
        _versus("versus_bare", 1000, "cpu_ms_per_decision"),
        _within(1.5),
        "×",
    ),
    Target(
        "idle CPU ÷ bare, 1,000 waiting",
        "≤ 1.5×",
        _versus("versus_bare", 1000, "idle_cpu_percent"),
        _within(1.5),
        "×",
    ),
    Target(
        "idle CPU ÷ bare, 5,000 waiting",
        "≤ 1.5×",
        _versus("versus_bare", 5000, "idle_cpu_percent"),
        _within(1.5),
        "×",
    ),
    Target(
        "idle CPU ÷ bare, 10,000 waiting",
        "≤ 1.5×",
        _versus("versus_bare", 10_000, "idle_cpu_percent"),
        _within(1.5),
        "×",
    ),
    Target(
        "time stalled idle ÷ bare, 1,000 waiting",
        "≤ 1.5×",
        _stalled_idle(1000),
        _within(1.5),
        "×",
    ),
    Target(
        "time stalled idle ÷ bare, 5,000 waiting",
        "≤ 1.5×",
        _stalled_idle(5000),
        _within(1.5),
        "×",
    ),
    Target(
        "time stalled idle ÷ bare, 10,000 waiting",
        "≤ 1.5×",
        _stalled_idle(10_000),
        _within(1.5),
        "×",
    ),
    Target(
        "memory push2fa adds per waiting page, largest N",
        "≤ 2 KB",
        _memory_over_bare,
        _within(2),
        "KB",
    ),
    Target(
        "delay p50 ÷ bare, PostgreSQL, 1,000 waiting",
        "≤ 1.5×",
        _versus("versus_bare_postgres", 1000, "delay_p50_ms"),
        _within(1.5),
        "×",
    ),
    Target(
        "server CPU per decision ÷ bare, PostgreSQL",
        "≤ 1.5×",
        _versus("versus_bare_postgres", None, "cpu_ms_per_decision"),
        _within(1.5),
        "×",
    ),
    Target(
        "delay p50 ÷ bare, 2 workers + Redis",
        "≤ 1.5×",
        _versus("versus_bare_redis", None, "delay_p50_ms"),
        _within(1.5),
        "×",
    ),
)


def evaluate(results: Results, targets: tuple[Target, ...] = TARGETS) -> list[dict[str, Any]]:
    rows = []
    for target in targets:
        value = target.measure(results)
        rows.append(
            {
                "target": target.name,
                "goal": target.goal,
                "measured": None if value is None else round(value, 2),
                "unit": target.unit,
                "met": None if value is None else bool(target.passes(value)),
            }
        )
    return rows
