"""The budget that bounds what anonymous traffic can make the server store."""

from __future__ import annotations

import logging

import pytest

from push2fa.web.write_budget import WriteBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_source_gets_its_few_rows_then_is_only_counted():
    budget = WriteBudget("test", per_source=3, overall=10, clock=Clock())

    allowed = [budget.allow("203.0.113.9") for _ in range(50)]

    assert allowed == [True] * 3 + [False] * 47
    assert budget.suppressed == 47


def test_many_sources_together_stay_under_the_overall_bound():
    budget = WriteBudget("test", per_source=3, overall=10, clock=Clock())

    allowed = sum(budget.allow(f"198.51.100.{n}") for n in range(1000))

    assert allowed == 10
    assert budget.suppressed == 990


def test_the_budget_refills_each_window_and_reports_what_it_dropped(
    caplog: pytest.LogCaptureFixture,
):
    clock = Clock()
    budget = WriteBudget("webhook.rejected", per_source=1, overall=10, clock=clock)
    budget.allow("a")
    budget.allow("a")
    budget.allow("a")

    clock.now += 60
    with caplog.at_level(logging.WARNING, logger="push2fa.domain.audit"):
        assert budget.allow("a") is True

    assert "webhook.rejected: 2 more in the last minute not recorded" in caplog.text
    assert budget.suppressed == 0


def test_only_sources_that_were_written_are_remembered():
    budget = WriteBudget("test", per_source=1, overall=5, clock=Clock())

    for n in range(10_000):
        budget.allow(str(n))

    assert len(budget._written) == 5
