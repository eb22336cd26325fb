"""Stopping clients that probe: guessing ids, keys or cookies shows up as a run of failures.

Random ids make a blind guess hopeless, and a limit on failures makes trying many of them
slow as well: a client address that has failed ``limit`` times within ``window`` seconds is
refused (429) until its oldest failure leaves the window. Only failures count, so a busy
honest client is never slowed, and the caller decides which requests are exempt (those
that proved the API key). Kept in the process's memory: each worker limits on its own.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

DEFAULT_LIMIT = 20
DEFAULT_WINDOW = 60.0
MAX_TRACKED_CLIENTS = 10_000


class FailureLimiter:
    """Counts failures per client address in a sliding window."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float] | None:
        failures = self._failures.get(client)
        if failures is None:
            return None
        cutoff = self._clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        return failures

    def blocked(self, client: str) -> bool:
        """True while ``client`` has used up its failures."""
        failures = self._recent(client)
        return failures is not None and len(failures) >= self.limit

    def retry_after(self, client: str) -> int:
        """Whole seconds until ``client`` may try again (0 when it may now)."""
        failures = self._recent(client)
        if failures is None or len(failures) < self.limit:
            return 0
        return max(1, int(failures[0] + self.window - self._clock()) + 1)

    def record(self, client: str) -> None:
        if client not in self._failures and len(self._failures) >= MAX_TRACKED_CLIENTS:
            self._forget_idle()
        failures = self._failures.setdefault(client, deque(maxlen=self.limit))
        failures.append(self._clock())

    def _forget_idle(self) -> None:
        """Bound memory under a flood of addresses: drop clients with no recent failure,
        then (if still full) the oldest half."""
        for client in list(self._failures):
            self._recent(client)
        if len(self._failures) >= MAX_TRACKED_CLIENTS:
            by_age = sorted(self._failures, key=lambda c: self._failures[c][-1])
            for client in by_age[: len(by_age) // 2]:
                del self._failures[client]
