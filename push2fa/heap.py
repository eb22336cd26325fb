"""Keeping full garbage collections short while thousands of pages wait.

A full collection stops the event loop and walks every object the collector tracks; each
open socket adds a few hundred such objects that live as long as the page waits, so with
a thousand pages a full collection walked them all again and again (hundreds of
milliseconds on a busy host, during which no page heard anything). `gc.freeze()` moves
what is alive now out of the collector's reach; it is done at start-up (Services.start)
and again here, once a burst of new sockets has settled, and once more a ping interval
later (what the sockets make at their first ping).

Frozen objects are still freed by reference counting; only those caught in reference
cycles outlive their socket until the frozen set is put back (`gc.unfreeze()`). That
happens once as many sockets have closed since the last time as are open now, so the
memory held that way stays below what the open pages hold themselves, and each socket
is walked by a full collection a bounded number of times, however long it waits.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from push2fa.services import Services

log = logging.getLogger("push2fa.heap")

# Freeze once at least this many sockets opened since the last freeze, and either no
# socket opened during the last pass (the burst is over) or a long burst goes on.
FREEZE_AFTER_OPENED = 100
FREEZE_DURING_BURST = 2000
# A socket makes more long-lived objects after its first ping (about 60 of its ~280): so
# once more, a ping interval (25 s by default) and a little after a freeze.
FREEZE_AGAIN_AFTER = 30.0
# Put the frozen set back, collect once and freeze again once this many sockets (and at
# least as many as are open) have closed since the last time.
THAW_AFTER_CLOSED = 1000
CHECK_EVERY = 1.0


@dataclass(eq=False)  # one instance per loop, a key in the steps' table
class HeapFreezer:
    """Decides, from the counts of sockets opened so far and open now, when to freeze and
    when to thaw. `check` is called once a second by the periodic loop."""

    opened_at_freeze: int = 0
    opened_last_check: int = 0
    closed_at_thaw: int = 0
    again_at: float | None = None

    def check(self, opened: int, open_now: int, now: float | None = None) -> str | None:
        """Freeze or thaw if due; returns what it did ("freeze", "thaw") or None. `now`
        is a monotonic time in seconds."""
        now = time.monotonic() if now is None else now
        closed = opened - open_now
        if closed - self.closed_at_thaw >= max(THAW_AFTER_CLOSED, open_now):
            # One full collection, at a moment chosen here, frees what closed sockets left
            # in cycles; what is still alive goes back out of reach at once.
            self.closed_at_thaw = closed
            self.opened_at_freeze = self.opened_last_check = opened
            self.again_at = None
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            return "thaw"
        new = opened - self.opened_at_freeze
        settled = opened == self.opened_last_check
        self.opened_last_check = opened
        burst_over = new >= FREEZE_DURING_BURST or (new >= FREEZE_AFTER_OPENED and settled)
        if burst_over or (self.again_at is not None and now >= self.again_at):
            self.opened_at_freeze = opened
            self.again_at = now + FREEZE_AGAIN_AFTER if burst_over else None
            # Young garbage is freed now, not frozen with the survivors. After a burst the
            # young generations are small. A ping interval later the middle one holds what
            # every socket made at its first ping (57,000 objects at 1,000 pages, of which
            # 30-130 were garbage): walking it stopped the loop for 24-50 ms while nothing
            # else happened, so then only the youngest is collected, and the few dead
            # objects left wait for the next thaw.
            gc.collect(1 if burst_over else 0)
            gc.freeze()
            return "freeze"
        return None

    async def __call__(self, svc: Services) -> None:
        realtime = svc.realtime
        what = self.check(realtime.websockets_opened, realtime.open_websockets)
        if what is not None:
            log.debug("heap %s with %d sockets open", what, realtime.open_websockets)
