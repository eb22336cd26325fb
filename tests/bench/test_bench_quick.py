"""The benchmark harness still runs end to end: its smallest configuration (20 waiting
browsers on websocket, app and emulator as separate servers) produces a results file of
the expected shape, and every decided browser got its event. No timing is asserted: this
machine's numbers belong in docs/benchmarks.md, not in a pass/fail line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {"count", "min", "median", "p95", "p99", "max", "mean"}


def _run_quick(tmp_path: Path, only: str) -> dict[str, Any]:
    results = tmp_path / "quick.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSH2FA_", "AUTHY_"))}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--only",
            only,
            "--results",
            str(results),
            "--no-report",
            "--wait-quiet",
            "0",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary: dict[str, Any] = json.loads(results.read_text())
    return summary


def test_quick_push_run_reaches_every_waiting_browser(tmp_path: Path) -> None:
    document = _run_quick(tmp_path, "push")
    assert document["mode"] == "quick"
    assert {"cores", "ram_gib", "python", "packages"} <= set(document["machine"])
    assert {row["target"] for row in document["targets"]}
    [push] = document["push"]
    assert "error" not in push, push.get("traceback")
    assert push["n"] == 20
    assert push["connect"]["connected"] == 20
    assert push["all_got_initial_state"]
    assert push["decisions"] == 20
    assert push["received"] == 20
    assert push["every_decided_waiter_got_its_event"]
    assert set(push["delay_ms"]) == SUMMARY_KEYS
    assert push["rss_after_bytes"] > 0
    assert {"cpu_percent", "safety_net_polls", "ws_frames_in"} <= set(push["idle"])
    # The bare stack ran as the reference in the same run, timed the same way.
    [bare] = document["bare"]
    assert "error" not in bare, bare.get("traceback")
    assert bare["n"] == 20 and bare["decisions"] == 20 and bare["missing"] == 0
    assert set(bare["delay_ms"]) == SUMMARY_KEYS
    assert {"over_10_ms", "over_50_ms", "over_100_ms"} == set(push["shares"]) == set(bare["shares"])
    assert all(p["collections"] >= 0 for p in push["client_pauses"] + bare["client_pauses"])
    [versus] = document["versus_bare"]
    assert versus["n"] == 20
    assert {"delay_p50_ms", "delay_p99_ms", "cpu_ms_per_decision", "idle_cpu_percent"} <= set(
        versus["figures"]
    )
    # The stall and GC probe read the same way on both stacks, for both windows.
    for entry in (push, bare):
        for window in ("idle_probe", "rounds_probe"):
            probe = entry[window]
            assert probe["ticks"] > 0  # the 10 ms timer ran in that server
            assert 0 <= probe["stalled_share"] <= 1
            assert set(probe["gc"]) == {"gen0", "gen1", "gen2"}
    assert {"stalled_share_idle", "stalled_share_rounds", "full_gc_per_1000_decisions"} <= set(
        versus["figures"]
    )
    assert push["database_per_decision"]["statements"] > 0
    assert {row["target"] for row in document["targets_13"]}


def test_quick_postgres_and_redis_runs_each_have_their_bare_reference(tmp_path: Path) -> None:
    document = _run_quick(tmp_path, "postgres,redis")
    for key, workers in (("postgres", 1), ("redis", 2)):
        [ours] = document[key]
        [bare] = document[f"{key}_bare"]
        assert "error" not in ours, ours.get("traceback")
        assert "error" not in bare, bare.get("traceback")
        assert ours["workers"] == bare["workers"] == workers
        assert ours["missing"] == bare["missing"] == 0
        [versus] = document[f"versus_bare_{key}"]
        assert versus["n"] == 20 and versus["workers"] == workers
    assert document["postgres"][0]["database"] == "postgres"
    assert document["redis"][0]["redis"] and document["redis_bare"][0]["redis"]
