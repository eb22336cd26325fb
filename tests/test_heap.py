"""When the heap is frozen and thawed: after a burst of sockets has settled (not on every
connect), during a long burst, and back again once as many sockets have closed as are
open, so cyclic garbage of closed sockets is not held for ever. The collector's state is
real (gc.freeze / gc.unfreeze in this process) and is put back after each test."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from push2fa import heap
from push2fa.heap import HeapFreezer


@pytest.fixture(autouse=True)
def thawed_after() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_a_settled_burst_is_frozen_once() -> None:
    freezer = HeapFreezer()
    assert freezer.check(opened=300, open_now=300) is None  # still arriving
    assert gc.get_freeze_count() == 0
    assert freezer.check(opened=300, open_now=300) == "freeze"  # a quiet pass: settled
    assert gc.get_freeze_count() > 0
    assert freezer.check(opened=300, open_now=300) is None  # nothing new since


def test_a_few_new_sockets_do_not_freeze_the_heap() -> None:
    freezer = HeapFreezer()
    for opened in range(0, heap.FREEZE_AFTER_OPENED, 10):
        assert freezer.check(opened, open_now=opened) is None
        assert freezer.check(opened, open_now=opened) is None
    assert gc.get_freeze_count() == 0


def test_a_long_burst_is_frozen_while_it_goes_on() -> None:
    freezer = HeapFreezer()
    opened = 0
    done = []
    while opened < 3 * heap.FREEZE_DURING_BURST:
        opened += 500  # never a quiet pass
        done.append(freezer.check(opened, open_now=opened))
    assert done.count("freeze") == 3


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: reference counting alone never frees it


def test_the_frozen_set_is_collected_once_as_many_sockets_closed_as_are_open() -> None:
    freezer = HeapFreezer()
    assert freezer.check(1500, 1500) is None
    assert freezer.check(1500, 1500) == "freeze"
    cycle = Node()
    alive = weakref.ref(cycle)
    gc.freeze()  # frozen with a socket's objects, then the socket closes
    del cycle
    gc.collect()
    assert alive() is not None  # out of the collector's reach while frozen
    assert freezer.check(1500, 700) is None  # 800 closed: fewer than THAW_AFTER_CLOSED
    assert freezer.check(1600, 500) == "thaw"  # 1,100 closed, more than the 500 open
    assert alive() is None  # the frozen cycle was collected
    assert gc.get_freeze_count() > 0  # and what is alive is out of reach again


def test_what_sockets_make_at_their_first_ping_is_frozen_a_ping_interval_later() -> None:
    freezer = HeapFreezer()
    assert freezer.check(300, 300, now=0.0) is None
    assert freezer.check(300, 300, now=1.0) == "freeze"
    assert freezer.check(300, 300, now=2.0) is None
    later = 1.0 + heap.FREEZE_AGAIN_AFTER
    assert freezer.check(300, 300, now=later - 0.5) is None
    gc.unfreeze()
    assert freezer.check(300, 300, now=later) == "freeze"
    assert gc.get_freeze_count() > 0
    assert freezer.check(300, 300, now=later + 100) is None  # once, not every interval


def _generations_collected_by(freezer: HeapFreezer, opened: int, now: float) -> list[int]:
    collected: list[int] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collected.append(info["generation"])

    gc.callbacks.append(record)
    try:
        assert freezer.check(opened, opened, now=now) == "freeze"
    finally:
        gc.callbacks.remove(record)
    return collected


def test_the_freeze_a_ping_interval_later_does_not_walk_what_the_pings_made() -> None:
    """The sockets' first-ping objects sit in the middle generation by then; walking them
    all to find a few dead ones stopped the loop while pages waited, so it is not done."""
    freezer = HeapFreezer()
    assert freezer.check(300, 300, now=0.0) is None
    assert _generations_collected_by(freezer, 300, now=1.0) == [1]  # after the burst
    later = 1.0 + heap.FREEZE_AGAIN_AFTER
    assert _generations_collected_by(freezer, 300, now=later) == [0]


def test_garbage_left_by_the_later_freeze_is_freed_at_the_next_thaw() -> None:
    freezer = HeapFreezer()
    assert freezer.check(1500, 1500, now=0.0) is None
    assert freezer.check(1500, 1500, now=1.0) == "freeze"
    cycle = Node()
    alive = weakref.ref(cycle)
    gc.collect(0)  # it survives a young collection: the middle generation holds it
    del cycle
    assert freezer.check(1500, 1500, now=1.0 + heap.FREEZE_AGAIN_AFTER) == "freeze"
    gc.collect()
    assert alive() is not None  # frozen with the live sockets' objects
    assert freezer.check(1600, 500, now=100.0) == "thaw"
    assert alive() is None
