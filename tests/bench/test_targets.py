"""The issue's targets judge a run honestly: a figure missing reads as not measured, and
push2fa stalling where the bare stack did not is a miss, not a missing ratio."""

from __future__ import annotations

from typing import Any

from bench import probe, targets

STALLED = "time stalled idle ÷ bare, 5,000 waiting"


def _idle(stalled_ms: float, seconds: float = 30.0) -> dict[str, Any]:
    return {
        "stalled_ms": stalled_ms,
        "stalled_share": stalled_ms / 1000 / seconds,
        "seconds": seconds,
    }


def _run(push_ms: float, bare_ms: float, n: int = 5000) -> dict[str, Any]:
    return {
        "push": [{"n": n, "idle_probe": _idle(push_ms)}],
        "bare": [{"n": n, "idle_probe": _idle(bare_ms)}],
    }


def _verdict(results: dict[str, Any], name: str = STALLED) -> dict[str, Any]:
    return next(
        row for row in targets.evaluate(results, targets.TARGETS_13) if row["target"] == name
    )


def test_stalled_idle_is_judged_at_every_size_the_issue_names() -> None:
    names = {row["target"] for row in targets.evaluate({}, targets.TARGETS_13)}
    for size in ("1,000", "5,000", "10,000"):
        assert f"time stalled idle ÷ bare, {size} waiting" in names


def test_stalling_where_bare_never_stalled_is_a_miss() -> None:
    row = _verdict(_run(push_ms=71.0, bare_ms=0.0))
    # bare is taken as one threshold-long stall: 71 ms over 20 ms
    assert row["measured"] == round(0.071 / probe.THRESHOLD, 2)
    assert row["met"] is False


def test_neither_stalling_is_met() -> None:
    row = _verdict(_run(push_ms=0.0, bare_ms=0.0))
    assert row["measured"] == 0.0
    assert row["met"] is True


def test_stalls_are_compared_as_a_ratio_when_both_stalled() -> None:
    assert _verdict(_run(push_ms=300.0, bare_ms=100.0))["met"] is False
    row = _verdict(_run(push_ms=140.0, bare_ms=100.0))
    assert row["measured"] == 1.4
    assert row["met"] is True


def test_a_size_not_measured_reads_as_not_measured() -> None:
    row = _verdict(_run(push_ms=10.0, bare_ms=10.0, n=1000))
    assert row["measured"] is None
    assert row["met"] is None
