"""A full run never overwrites the day's earlier results: figures quoted from a run must
stay where they were quoted from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import run


def test_a_second_run_the_same_day_keeps_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    morning = datetime(2026, 12, 3, 13, 5, tzinfo=UTC)
    first = run._results_file(morning)
    assert first.name == "2026-12-03.json"
    first.write_text("{}")
    second = run._results_file(datetime(2026, 12, 3, 16, 57, tzinfo=UTC))
    assert second.name == "2026-12-03T1657.json"
    assert second != first
