"""How much anonymous traffic can make the server store.

A forged webhook costs its sender nothing, and each one used to add an audit row and a log
line, for ever. A budget lets a few of them per source and per minute be written (enough
to investigate), and counts the rest: one log line per minute says how many were not
recorded. The counters live in this process, so they cost no write themselves, cannot be
raced by parallel requests (no await between check and count), and stay small: only
sources that were allowed a row are tracked, at most `overall` of them per window. With
several workers each has its own budget, so the bound is per worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from quart import Quart

log = logging.getLogger("push2fa.audit")

EXTENSION = "push2fa_write_budgets"
WINDOW_SECONDS = 60.0
# Rejected webhooks recorded per source, and over all sources, per minute and worker.
REJECTED_WEBHOOKS_PER_SOURCE = 10
REJECTED_WEBHOOKS_OVERALL = 100


@dataclass
class WriteBudget:
    """Allow `per_source` writes per source and `overall` in all, per window."""

    name: str
    per_source: int
    overall: int
    window: float = WINDOW_SECONDS
    clock: Callable[[], float] = time.monotonic
    _started: float = field(default=float("-inf"), init=False)
    _written: dict[str, int] = field(default_factory=dict, init=False)
    _total: int = field(default=0, init=False)
    _suppressed: int = field(default=0, init=False)

    def allow(self, source: str) -> bool:
        """True when this event may be stored; otherwise it is only counted."""
        now = self.clock()
        if now - self._started >= self.window:
            self._report()
            self._started, self._written, self._total, self._suppressed = now, {}, 0, 0
        used = self._written.get(source, 0)
        if used >= self.per_source or self._total >= self.overall:
            if self._suppressed == 0:
                log.warning(
                    "%s: over %s per source or %s in all this minute; counting the rest",
                    self.name,
                    self.per_source,
                    self.overall,
                )
            self._suppressed += 1
            return False
        self._written[source] = used + 1
        self._total += 1
        return True

    @property
    def suppressed(self) -> int:
        return self._suppressed

    def _report(self) -> None:
        if self._suppressed:
            log.warning("%s: %s more in the last minute not recorded", self.name, self._suppressed)


def budget(app: Quart, name: str, per_source: int, overall: int) -> WriteBudget:
    """The app's budget called `name` (one per app, so tests and apps never share one)."""
    budgets: dict[str, WriteBudget] = app.extensions.setdefault(EXTENSION, {})
    if name not in budgets:
        budgets[name] = WriteBudget(name, per_source, overall)
    return budgets[name]


def rejected_webhooks(app: Quart) -> WriteBudget:
    return budget(app, "webhook.rejected", REJECTED_WEBHOOKS_PER_SOURCE, REJECTED_WEBHOOKS_OVERALL)
