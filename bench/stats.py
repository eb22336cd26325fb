"""Percentile summaries, computed the same way everywhere (server and harness).

Linear interpolation between closest ranks (numpy's default), so a p99 over 300 samples is
not just the third-largest value. Plain Python: the server side must not need numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

QUANTILES = {"median": 0.50, "p95": 0.95, "p99": 0.99}


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of an already sorted, non-empty sequence."""
    if not ordered:
        raise ValueError("no samples")
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def summarize(values: Iterable[float], digits: int = 3) -> dict[str, float | int | None]:
    """count, min, median, p95, p99, max and mean; None for each when there are no values."""
    ordered = sorted(values)
    if not ordered:
        return {
            "count": 0,
            "min": None,
            "median": None,
            "p95": None,
            "p99": None,
            "max": None,
            "mean": None,
        }
    out: dict[str, float | int | None] = {"count": len(ordered), "min": round(ordered[0], digits)}
    for name, q in QUANTILES.items():
        out[name] = round(percentile(ordered, q), digits)
    out["max"] = round(ordered[-1], digits)
    out["mean"] = round(sum(ordered) / len(ordered), digits)
    return out
