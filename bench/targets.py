"""The issue's targets, checked against a run's results (measured, never asserted).

Each target names where its figure comes from, so a missing scenario reads as "not
measured" rather than as a pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def _push(results: Results, n: int) -> dict[str, Any] | None:
    return next((e for e in _ok(results.get("push")) if e["n"] == n), None)


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


def evaluate(results: Results) -> list[dict[str, Any]]:
    rows = []
    for target in TARGETS:
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
