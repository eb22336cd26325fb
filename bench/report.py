"""docs/benchmarks.md and its charts, generated from one results file.

`python -m bench.report bench/results/<date>.json` re-renders without re-measuring. Every
number on the page comes from the JSON; nothing here is typed in by hand, so the page
cannot drift from the run it describes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench import targets

Results = dict[str, Any]
PERCENTILES = ("min", "median", "p95", "p99", "max")


def _ok(entries: Any) -> list[dict[str, Any]]:
    if isinstance(entries, dict):
        entries = [entries]
    return [e for e in entries or [] if isinstance(e, dict) and "error" not in e]


def _failed(entries: Any) -> list[dict[str, Any]]:
    if isinstance(entries, dict):
        entries = [entries]
    return [e for e in entries or [] if isinstance(e, dict) and "error" in e]


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _n(value: int) -> str:
    return f"{value:,}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _delay_cells(summary: dict[str, Any]) -> list[str]:
    return [_ms(summary.get(p)) for p in PERCENTILES]


# --- charts ------------------------------------------------------------------------------


def _charts(results: Results, folder: Path) -> dict[str, str]:
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made: dict[str, str] = {}
    push = sorted(_ok(results.get("push")), key=lambda e: e["n"])
    redis = sorted(_ok(results.get("redis")), key=lambda e: e["n"])

    versus = sorted(results.get("versus_bare") or [], key=lambda r: r["n"])
    if versus:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ns = [row["n"] for row in versus]
        for key, label, style in (
            ("delay_p50_ms", "delay p50", "o-"),
            ("delay_p99_ms", "delay p99", "^-"),
            ("cpu_ms_per_decision", "CPU per decision", "s--"),
            ("idle_cpu_percent", "idle CPU", "x:"),
            ("stalled_share_idle", "time stalled, idle", "d:"),
        ):
            ratios = [(row["figures"].get(key) or {}).get("ratio") for row in versus]
            ax.plot(ns, [float("nan") if r is None else r for r in ratios], style, label=label)
        ax.axhline(1.5, color="green", lw=0.8, ls="--")
        ax.text(ns[0], 1.5, " target: 1.5× bare", va="bottom", fontsize=8, color="green")
        ax.set_xscale("log")
        ax.set_xlabel("waiting browsers (websocket)")
        ax.set_ylabel("push2fa ÷ bare stack (same run)")
        ax.set_title("push2fa against the bare stack")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "versus_bare.png", dpi=110)
        plt.close(fig)
        made["versus_bare"] = "versus_bare.png"

    if push:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        ns = [e["n"] for e in push]
        for key, style in (("median", "o-"), ("p95", "s--"), ("p99", "^-"), ("max", "x:")):
            ax.plot(ns, [e["delay_ms"][key] for e in push], style, label=f"{key}, 1 worker")
        if redis:
            ax.plot(
                [e["n"] for e in redis],
                [e["delay_ms"]["p99"] for e in redis],
                "D",
                color="black",
                label="p99, 2 workers + Redis",
            )
        ax.axhline(10, color="green", lw=0.8, ls="--")
        ax.axhline(50, color="red", lw=0.8, ls="--")
        ax.text(ns[0], 10, " target p99 at 1,000: 10 ms", va="bottom", fontsize=8, color="green")
        ax.text(ns[0], 50, " target p99 at 10,000: 50 ms", va="bottom", fontsize=8, color="red")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("waiting browsers (websocket)")
        ax.set_ylabel("webhook → browser event (ms)")
        ax.set_title("Push delay vs waiting browsers")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "delay_vs_n.png", dpi=110)
        plt.close(fig)
        made["delay"] = "delay_vs_n.png"

        fig, ax = plt.subplots(figsize=(7, 4.2))
        for entry in push:
            ramp = sorted(entry["ramp"], key=lambda r: r["websockets"])
            ax.plot(
                [r["websockets"] for r in ramp],
                [r["rss"] / 2**20 for r in ramp],
                ".-",
                label=f"N = {_n(entry['n'])}",
            )
        big = push[-1]
        base = big["rss_before_bytes"] / 2**20
        ax.plot(
            [0, big["n"]],
            [base, base + big["n"] * 40 / 1024],
            "k--",
            lw=0.8,
            label="target: 40 KB per browser",
        )
        ax.set_xlabel("open websockets")
        ax.set_ylabel("server RSS (MiB)")
        ax.set_title("Server memory while browsers connect")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "memory_vs_n.png", dpi=110)
        plt.close(fig)
        made["memory"] = "memory_vs_n.png"

    polling = _ok(results.get("polling"))
    if polling and push:
        by_n = {e["n"]: e for e in push}
        ns = sorted({p["n"] for p in polling if p["n"] in by_n})
        if ns:
            fig, axes = plt.subplots(1, len(ns), figsize=(4 * len(ns) + 1, 4.2), squeeze=False)
            for ax, n in zip(axes[0], ns, strict=True):
                labels, medians, p99s = (
                    ["push"],
                    [by_n[n]["delay_ms"]["median"]],
                    [by_n[n]["delay_ms"]["p99"]],
                )
                for poll in sorted(
                    (p for p in polling if p["n"] == n), key=lambda p: p["interval_s"]
                ):
                    labels.append(f"poll {poll['interval_s']:g} s")
                    medians.append(poll["delay_ms"]["median"])
                    p99s.append(poll["delay_ms"]["p99"])
                xs = range(len(labels))
                ax.bar([x - 0.2 for x in xs], medians, width=0.4, label="median")
                ax.bar([x + 0.2 for x in xs], p99s, width=0.4, label="p99")
                ax.set_xticks(list(xs), labels)
                ax.set_yscale("log")
                ax.set_title(f"N = {_n(n)}")
                ax.set_ylabel("decision → page knows (ms)")
                ax.grid(True, axis="y", which="both", alpha=0.3)
                ax.legend(fontsize=8)
            fig.suptitle("Push vs polling: how long the page waits after the phone answers")
            fig.tight_layout()
            fig.savefig(folder / "polling_vs_push.png", dpi=110)
            plt.close(fig)
            made["polling"] = "polling_vs_push.png"
    return made


def _gen2_max(entry: dict[str, Any]) -> float | None:
    """The longest full collection in the idle window or the rounds (the stall probe);
    older results kept it in the lag sampler's figures."""
    found = [
        ((entry.get(f"{window}_probe") or {}).get("gc") or {}).get("gen2", {}).get("longest_ms")
        for window in ("idle", "rounds")
    ]
    lag = entry.get("lag_during_rounds_ms") or {}
    found.append(((lag.get("gc_pause_ms") or {}).get("gen2") or {}).get("max"))
    values = [float(v) for v in found if isinstance(v, int | float) and v > 0]
    return max(values) if values else None


def _stalled(entry: dict[str, Any], window: str) -> str:
    share = (entry.get(f"{window}_probe") or {}).get("stalled_share")
    return _share(share)


def _what_if_rows(
    whatif: list[dict[str, Any]], push_by_n: dict[int, dict[str, Any]], storm: dict[str, Any] | None
) -> list[list[str]]:
    rows: list[list[str]] = []
    for w in whatif:
        name, new = w["name"], w["result"]
        if w["compare_with"] == "storm" and storm is not None:
            busy = new["storm"]
            rows += [
                [name, "lag p99", _ms(storm["lag_ms"]["p99"]), _ms(busy["lag_ms"]["p99"])],
                [name, "lag max", _ms(storm["lag_ms"]["max"]), _ms(busy["lag_ms"]["max"])],
                [
                    name,
                    "push delay p99 during the storm",
                    _ms(storm["push"]["delay_ms"]["p99"]),
                    _ms(busy["push"]["delay_ms"]["p99"]),
                ],
                [
                    name,
                    "logins completed/s",
                    f"{storm['logins']['completed_per_second']:g}",
                    f"{busy['logins']['completed_per_second']:g}",
                ],
            ]
        elif w["compare_with"].startswith("push:"):
            base = push_by_n.get(int(w["compare_with"].split(":")[1]))
            if base is None:
                continue
            for label, path in (
                ("delay median", ("delay_ms", "median")),
                ("delay p99", ("delay_ms", "p99")),
                ("delay max", ("delay_ms", "max")),
            ):
                rows.append([name, label, _ms(base[path[0]][path[1]]), _ms(new[path[0]][path[1]])])
            rows.append(
                [
                    name,
                    "idle CPU",
                    f"{base['idle']['cpu_percent']['server']:g} %",
                    f"{new['idle']['cpu_percent']['server']:g} %",
                ]
            )
            rows.append([name, "longest full GC", _ms(_gen2_max(base)), _ms(_gen2_max(new))])
            rows.append(
                [
                    name,
                    "safety-net polls while idle",
                    str(base["idle"]["safety_net_polls"]),
                    str(new["idle"]["safety_net_polls"]),
                ]
            )
    return rows


# --- the page ----------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


VERSUS_BARE = (
    ("delay_p50_ms", "delay p50", _ms),
    ("delay_p99_ms", "delay p99", _ms),
    ("share_over_10_ms", "decisions over 10 ms", lambda v: _share(v)),
    ("share_over_50_ms", "decisions over 50 ms", lambda v: _share(v)),
    ("share_over_100_ms", "decisions over 100 ms", lambda v: _share(v)),
    ("cpu_ms_per_decision", "server CPU per decision", _ms),
    ("gc_ms_per_decision", "GC pauses per decision", _ms),
    ("full_gc_per_1000_decisions", "full collections per 1,000 decisions", _num),
    ("longest_full_gc_ms", "longest full collection", _ms),
    ("stalled_share_rounds", "time stalled > 20 ms, deciding", lambda v: _share(v)),
    ("idle_cpu_percent", "idle CPU", lambda v: "–" if v is None else f"{v:g} %"),
    ("stalled_share_idle", "time stalled > 20 ms, idle", lambda v: _share(v)),
    ("rss_per_waiter_bytes", "memory per waiting page", lambda v: _kb(v)),
)
VERSUS_GROUPS = (
    ("versus_bare", "one worker, SQLite", "push", "bare"),
    ("versus_bare_postgres", "one worker, PostgreSQL", "postgres", "postgres_bare"),
    ("versus_bare_redis", "2 workers + Redis, SQLite", "redis", "redis_bare"),
)
CHANGES = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-changes.md"


def _share(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.2f} %" if value < 0.01 else f"{100 * value:.1f} %"


def _kb(value: float | None) -> str:
    return "–" if value is None else f"{value / 1024:.1f} KB"


def _versus_bare(results: Results) -> list[str]:
    """The issue's table: each figure for push2fa and for the bare stack, same run."""
    groups = [(g, results.get(g[0]) or []) for g in VERSUS_GROUPS]
    if not any(rows for _, rows in groups):
        return []
    lines = [
        "## push2fa against the bare stack (same run)",
        "",
        "The bare stack (`bench/bare.py`: Quart + python-socketio + Hypercorn, a POST that "
        "emits to a room, no database, no signature) runs right after push2fa at each N, "
        "with the same Hypercorn configuration, workers (and, with 2 workers, python-socketio's "
        "stock Redis manager), client fleet, callbacks and stall probe. The ratio survives a "
        "busy machine better than either absolute figure. A missing event counts as slower "
        "than every threshold. Time stalled is the share of wall time the server's event loop "
        "was held more than 20 ms (bench/probe.py); with 2 workers it is one worker's.",
        "",
    ]
    for (_, title, ours_key, bare_key), rows_in in groups:
        if not rows_in:
            continue
        rows = []
        for entry in rows_in:
            for key, label, fmt in VERSUS_BARE:
                cell = entry["figures"].get(key) or {}
                ratio = cell.get("ratio")
                rows.append(
                    [
                        f"{label}, {_n(entry['n'])} waiting",
                        fmt(cell.get("push2fa")),
                        fmt(cell.get("bare")),
                        "–" if ratio is None else f"{ratio:g}×",
                    ]
                )
        lines += [f"### {title}", ""]
        lines += _table(["figure", "push2fa", "bare", "ratio"], rows)
        lines += [""]
        database = [
            e
            for e in _ok(results.get(ours_key))
            if e.get("database_per_decision") and e.get("workers", 1) == 1
        ]
        for e in database:
            per = e["database_per_decision"]
            lines += [
                f"push2fa's database work per decision at {_n(e['n'])} waiting: "
                f"{per.get('statements', 0):g} SQL statements, "
                f"{per.get('thread_hops', 0):g} hops to aiosqlite's connection threads "
                f"(0 on PostgreSQL), {per.get('connections_opened', 0):g} connections opened.",
                "",
            ]
        objects = []
        for kind in (ours_key, bare_key):
            for e in _ok(results.get(kind)):
                idle = e.get("idle_probe") or {}
                if idle.get("gc_tracked_objects") is not None:
                    objects.append(
                        f"{'push2fa' if kind == ours_key else 'bare'} at {_n(e['n'])}: "
                        f"{idle['gc_tracked_objects']:,} tracked, "
                        f"{idle.get('gc_frozen_objects', 0):,} frozen"
                    )
        if objects:
            lines += [
                "Objects the collector walks while idle (a full collection's work): "
                + "; ".join(objects)
                + ".",
                "",
            ]
    pauses = [
        p["longest_ms"]
        for kind in ("push", "bare", "postgres", "postgres_bare", "redis", "redis_bare")
        for e in _ok(results.get(kind))
        for p in e.get("client_pauses") or []
    ]
    if pauses:
        lines += [
            f"Client processes' own pauses while timing (GC, recorded per process): longest "
            f"{_ms(max(pauses))}; their heaps are frozen after connecting, and the pages that "
            "get decided live in a small probe process of their own.",
            "",
        ]
    return lines


def _machine_load(results: Results) -> str:
    """How busy the rest of the machine was while each scenario ran."""
    seen: list[dict[str, float]] = []
    for value in results.values():
        for entry in value if isinstance(value, list) else [value]:
            load = entry.get("machine_load") if isinstance(entry, dict) else None
            if isinstance(load, dict) and load.get("others_percent") is not None:
                seen.append(load)
    if not seen:
        return ""
    mean = sum(s["others_percent"] for s in seen) / len(seen)
    top = max(float(s.get("others_max_percent") or s["others_percent"]) for s in seen)
    busy = "busy" if mean > 25 else "quiet"
    return (
        f"The machine was {busy}: processes outside the benchmark used {mean:.0f} % of a "
        f"core on average while the scenarios ran (at most {top:.0f} % of its 200 %). Read "
        "the ratios to the bare stack, measured minutes apart in the same run; absolute "
        "figures move with that load."
    )


CARRIED = ("polling", "throughput", "storm")


def carry_over(results: Results, results_path: Path) -> Results:
    """Scenarios a full run skipped, taken from the newest earlier full results file that
    has them, and named as such on the page."""
    missing = [key for key in CARRIED if key not in results]
    if not missing or results.get("mode") != "full":
        return results
    merged = dict(results)
    carried: dict[str, str] = dict(results.get("carried_over") or {})
    folder = results_path.parent
    for path in sorted(folder.glob("*.json"), reverse=True):
        if path.resolve() == results_path.resolve() or not missing:
            continue
        older = json.loads(path.read_text())
        if older.get("mode") != "full":
            continue
        for key in [k for k in missing if k in older]:
            merged[key] = older[key]
            carried[key] = f"{folder.name}/{path.name}"
            missing.remove(key)
    if carried:
        merged["carried_over"] = carried
    return merged


def _changes() -> list[str]:
    """The account of each performance change, kept by hand beside this page."""
    if not CHANGES.exists():
        return []
    return [CHANGES.read_text().rstrip(), ""]


def render(results: Results, results_path: str, charts: dict[str, str], chart_dir: str) -> str:
    out: list[str] = []
    add = out.append
    meta = results["machine"]
    add("# Benchmarks")
    add("")
    add(
        f"Generated by `make bench` from `{results_path}` ({results['started_at']}, "
        f"{results['mode']} run, {results['wall_seconds']:.0f} s). Do not edit by hand: "
        "re-run `make bench`, or `python -m bench.report <results.json>` to re-render."
    )
    add("")
    add(
        "What is measured: the delay from the moment a signed Authy callback leaves for the "
        "app's webhook to the moment the waiting browser's Socket.IO client has the "
        "`challenge` event; what waiting costs the server (memory, CPU, requests); and the "
        "same delay with the polling design push2fa replaced."
    )
    add("")

    load = _machine_load(results)
    if load:
        add(load)
        add("")
    carried = results.get("carried_over") or {}
    if carried:
        add(
            "Not re-run this time, shown from an earlier full run of older code (not "
            "comparable with this run's figures): "
            + "; ".join(f"{key} from `{source}`" for key, source in carried.items())
            + "."
        )
        add("")
    for key, title, definitions in (
        (
            "targets_13",
            "Targets (issue 13: one worker unless named, ratios to the bare stack)",
            targets.TARGETS_13,
        ),
        ("targets", "Targets (issue 6)", targets.TARGETS),
    ):
        if key not in results:
            continue
        add(f"## {title}")
        add("")
        rows = []
        # Judged again by today's definitions, so a re-rendered report never shows a
        # verdict an older, looser definition gave.
        for row in targets.evaluate(results, definitions):
            value = (
                "not measured" if row["measured"] is None else f"{row['measured']:g} {row['unit']}"
            )
            verdict = {True: "met", False: "**missed**", None: "–"}[row["met"]]
            rows.append([row["target"], row["goal"], value, verdict])
        out += _table(["target", "goal", "measured", ""], rows)
        add("")

    out += _versus_bare(results)
    if "versus_bare" in charts:
        add(f"![push2fa ÷ bare vs N]({chart_dir}/{charts['versus_bare']})")
        add("")
    out += _changes()

    push = sorted(_ok(results.get("push")), key=lambda e: e["n"])
    if push:
        add("## Webhook → browser delay, one worker")
        add("")
        plan = results["plan"]
        minutes = plan.get("decision_minutes") or 0
        pace = f"{plan['decision_rate']:g} signed callbacks/s"
        if minutes:
            rates = sorted(
                {
                    round(min(plan["decision_rate"], e["decisions"] / (60 * minutes)), 1)
                    for e in push
                }
            )
            pace = (
                f"{'–'.join(f'{r:g}' for r in (rates[0], rates[-1]) if r)} signed callbacks/s "
                f"(each N's decisions spread over {minutes:g} min)"
            )
        add(
            f"{push[0]['rounds'][0]['decisions'] if push[0]['rounds'] else 0}–"
            f"{max(r['decisions'] for e in push for r in e['rounds'])} decisions per round at "
            f"{pace}, {plan['rounds']} rounds per N on the same N open sockets; the "
            "percentiles pool every round. `p99 per round` shows the spread between rounds."
        )
        add("")
        rows = []
        for e in push:
            per_round = [r["delay_ms"]["p99"] for r in e["rounds"] if r["delay_ms"]["p99"]]
            spread = f"{_ms(min(per_round))} – {_ms(max(per_round))}" if per_round else "–"
            rows.append(
                [
                    _n(e["n"]),
                    *_delay_cells(e["delay_ms"]),
                    spread,
                    _stalled(e, "rounds"),
                    _ms(_gen2_max(e)),
                    f"{e['received']}/{e['decisions']}",
                    e["client_processes"],
                    f"{e['machine_load']['others_percent']:g} %",
                ]
            )
        out += _table(
            [
                "N",
                *PERCENTILES,
                "p99 per round",
                "time stalled > 20 ms",
                "longest full GC",
                "events/decisions",
                "client processes",
                "other load",
            ],
            rows,
        )
        add("")
        emulator = [e for e in push if e.get("emulator_round")]
        for e in emulator:
            r = e["emulator_round"]
            add(
                f"Through the emulator instead (control API → emulator signs and calls back → "
                f"app → browser), N = {_n(e['n'])}, {r['decisions']} decisions: median "
                f"{_ms(r['delay_ms']['median'])}, p99 {_ms(r['delay_ms']['p99'])}, "
                f"max {_ms(r['delay_ms']['max'])}."
            )
            add("")
        if "delay" in charts:
            add(f"![delay percentiles vs N]({chart_dir}/{charts['delay']})")
            add("")

        add(
            "`time stalled > 20 ms` is the share of the rounds' wall time during which the "
            "server's event loop was held more than 20 ms (bench/probe.py): no socket heard "
            "anything meanwhile. `longest full GC` is the longest generation-2 garbage "
            "collection (idle window or rounds): it stops the loop and walks every tracked "
            "object not frozen, so it grows with the number of open sockets unless they are "
            "frozen (push2fa/heap.py)."
        )
        add("")
        add("## What waiting costs the server")
        add("")
        rows = []
        for e in push:
            idle = e["idle"]
            seconds = idle["cpu_percent"]["seconds"]
            rows.append(
                [
                    _n(e["n"]),
                    f"{e['rss_before_bytes'] / 2**20:.0f} → {e['rss_after_bytes'] / 2**20:.0f} MiB",
                    f"{e['rss_per_waiter_bytes'] / 1024:.1f} KB",
                    f"{idle['cpu_percent']['server']:g} %",
                    f"{idle['cpu_percent'].get('server_loop_thread', 0):g} %",
                    _stalled(e, "idle"),
                    f"{idle['safety_net_polls'] / seconds:.1f}/s",
                    f"{idle['http_requests']}",
                    f"{(idle['ws_frames_in'] + idle['ws_frames_out']) / seconds:.0f}/s",
                    f"{e['connect']['seconds']:.1f} s",
                ]
            )
        out += _table(
            [
                "N",
                "server RSS",
                "per browser",
                "idle CPU",
                "of which loop thread",
                "time stalled > 20 ms",
                "safety-net polls",
                "HTTP requests while idle",
                "ws frames",
                "connect all",
            ],
            rows,
        )
        add("")
        add(
            "Idle CPU is the server process over the idle window (% of one core), with nothing "
            "happening but N browsers waiting: Socket.IO pings and the app's own background "
            "work, of which the safety-net status poll (DESIGN rule 5) is shown separately "
            "because it grows with the number of pending challenges, not with traffic."
        )
        add("")
        if "memory" in charts:
            add(f"![server memory vs open websockets]({chart_dir}/{charts['memory']})")
            add("")

    polling = sorted(_ok(results.get("polling")), key=lambda p: (p["n"], -p["interval_s"]))
    if polling:
        add("## Push vs polling")
        add("")
        add(
            "The polling baseline is the seed app's design: each waiting page asks "
            "`GET /bench/status` (the challenge bound to its session, from the database) every "
            "interval, starting at a random point of its first interval. The endpoint exists "
            "only in the benchmark's app instance."
        )
        add("")
        by_n = {e["n"]: e for e in push}
        rows = []
        for n in sorted({p["n"] for p in polling}):
            if n in by_n:
                e = by_n[n]
                rows.append(
                    [
                        _n(n),
                        "push (websocket)",
                        *_delay_cells(e["delay_ms"]),
                        "0",
                        f"{e['idle']['cpu_percent']['server']:g} %",
                        "1 handshake",
                    ]
                )
            for p in (p for p in polling if p["n"] == n):
                ratio = ""
                if n in by_n and by_n[n]["delay_ms"]["median"]:
                    ratio = f" ({p['delay_ms']['median'] / by_n[n]['delay_ms']['median']:.0f}×)"
                rows.append(
                    [
                        _n(n),
                        f"poll every {p['interval_s']:g} s",
                        _ms(p["delay_ms"]["min"]),
                        _ms(p["delay_ms"]["median"]) + ratio,
                        _ms(p["delay_ms"]["p95"]),
                        _ms(p["delay_ms"]["p99"]),
                        _ms(p["delay_ms"]["max"]),
                        f"{p['server_requests_per_second']:g}",
                        f"{p['cpu_percent']['server']:g} %",
                        f"{p['polls_per_login']['mean']:.1f} polls "
                        f"(waited {p['mean_wait_before_decision_s']:g} s)",
                    ]
                )
        out += _table(
            [
                "N",
                "design",
                *PERCENTILES,
                "server req/s while waiting",
                "server CPU while waiting",
                "requests per login",
            ],
            rows,
        )
        add("")
        add(
            "Requests per login count only what differs between the designs (the wait page, "
            "its assets, the webhook and the final POST are the same in both): push opens one "
            "websocket whatever the wait; polling makes one request per interval waited."
        )
        add("")
        if "polling" in charts:
            add(f"![push vs polling]({chart_dir}/{charts['polling']})")
            add("")

    throughput = _ok(results.get("throughput"))
    if throughput:
        t = throughput[0]
        add("## Webhook throughput")
        add("")
        out += _table(
            [
                "waiting",
                "callbacks in flight",
                "verified + decided",
                "fanned out to pages",
                "server CPU",
                "webhook response p50 / p99",
                "delay p50 / p99",
            ],
            [
                [
                    _n(t["n"]),
                    t["concurrency"],
                    f"{t['verified_decided_per_second']:g}/s",
                    f"{t['fanned_out_per_second']:g}/s",
                    f"{t['server_cpu_percent']:g} %",
                    f"{_ms(t['webhook_response_ms']['median'])} / "
                    f"{_ms(t['webhook_response_ms']['p99'])}",
                    f"{_ms(t['delay_ms']['median'])} / {_ms(t['delay_ms']['p99'])}",
                ]
            ],
        )
        add("")
        add(
            f"{t['callbacks']} signed callbacks, each for a different waiting page, sent as "
            f"fast as {t['concurrency']} connections allow; {t['decided']} decided, "
            f"{t['received']} events received."
        )
        add("")

    storm = _ok(results.get("storm"))
    if storm:
        s = storm[0]
        quiet, busy = s["quiet"], s["storm"]
        logins = busy["logins"]
        add("## Event-loop lag during a bcrypt login storm")
        add("")
        add(
            f"{logins['offered_per_second']:g} password logins/s offered for "
            f"{logins['offered_seconds']:g} s (bcrypt cost {s['bcrypt_cost']}, in worker "
            f"threads) while {_n(s['n'])} browsers wait and {s['decision_rate']:g} decisions/s "
            "keep arriving. Lag is measured inside the server: how late a 10 ms timer fires."
        )
        add("")
        out += _table(
            [
                "phase",
                "lag median",
                "lag p99",
                "lag max",
                "push delay p50 / p99",
                "logins done",
                "server CPU",
            ],
            [
                [
                    "quiet",
                    _ms(quiet["lag_ms"]["median"]),
                    _ms(quiet["lag_ms"]["p99"]),
                    _ms(quiet["lag_ms"]["max"]),
                    f"{_ms(quiet['push']['delay_ms']['median'])} / "
                    f"{_ms(quiet['push']['delay_ms']['p99'])}",
                    "–",
                    "–",
                ],
                [
                    "storm",
                    _ms(busy["lag_ms"]["median"]),
                    _ms(busy["lag_ms"]["p99"]),
                    _ms(busy["lag_ms"]["max"]),
                    f"{_ms(busy['push']['delay_ms']['median'])} / "
                    f"{_ms(busy['push']['delay_ms']['p99'])}",
                    f"{logins['pushed']}/{logins['offered']} "
                    f"({logins['completed_per_second']:g}/s, p50 "
                    f"{_ms(logins['latency_ms']['median'])})",
                    f"{busy['server_cpu_percent']:g} %",
                ],
            ],
        )
        add("")
        pool = busy.get("db_connections_checked_out")
        if pool:
            add(
                f"Database connections checked out during the storm: at most {pool['max']} of "
                f"the pool's {pool['pool_limit']} (sampled each second: "
                f"{', '.join(str(x) for x in pool['samples'])})."
            )
            add("")
        stalls = busy["lag_ms"].get("stalls") or []
        if stalls:
            worst = max(stalls, key=lambda st: st["stalled_ms"])
            add(
                f"{len(stalls)} loop stalls over 50 ms were caught; the longest "
                f"({_ms(worst['stalled_ms'])}) was in:"
            )
            add("")
            add("```")
            add("".join(worst["stack"][-6:]).rstrip())
            add("```")
            add("")
            idle = sum(1 for st in stalls if "selector" in "".join(st["stack"][-2:]))
            if idle:
                add(
                    f"{idle} of the {len(stalls)} stalls were caught inside `selector.poll`: the "
                    "loop had nothing to run, yet its thread was not back in time — it was "
                    "waiting for a CPU core or the GIL, both taken by the bcrypt threads."
                )
                add("")

    redis = sorted(_ok(results.get("redis")), key=lambda e: e["n"])
    if redis or _failed(results.get("redis")):
        add("## Two workers + Redis")
        add("")
        if redis:
            rows = [
                [
                    _n(e["n"]),
                    *_delay_cells(e["delay_ms"]),
                    f"{e['received']}/{e['decisions']}",
                    f"{e['rss_per_waiter_bytes'] / 1024:.1f} KB",
                    f"{e['idle']['cpu_percent']['server']:g} %",
                ]
                for e in redis
            ]
            out += _table(
                [
                    "N",
                    *PERCENTILES,
                    "events/decisions",
                    "memory per browser",
                    "idle CPU (both workers)",
                ],
                rows,
            )
            add("")
        for failure in _failed(results.get("redis")):
            add(f"Did not run: `{failure['error']}`")
            add("")

    whatif = [w for w in results.get("whatif") or [] if "error" not in w["result"]]
    if whatif:
        add("## What-if experiments")
        add("")
        add(
            "Changes proposed to the app, measured by running the same scenario with one "
            "setting changed (the app's code untouched), beside the baseline above."
        )
        add("")
        out += _table(
            ["experiment", "figure", "baseline", "what-if"],
            _what_if_rows(whatif, {e["n"]: e for e in push}, storm[0]["storm"] if storm else None),
        )
        add("")

    failures = [
        f for key in ("push", "polling", "throughput", "storm") for f in _failed(results.get(key))
    ]
    failures += [w["result"] for w in results.get("whatif") or [] if "error" in w["result"]]
    if failures:
        add("## Scenarios that failed")
        add("")
        for failure in failures:
            add(f"- {failure['scenario']}: `{failure['error']}`")
        add("")

    add("## Method")
    add("")
    add(
        "- The app runs under Hypercorn (settings from `hypercorn.toml`) in its own process, "
        "configured by environment variables like a deployment, with a fresh SQLite database "
        "per scenario migrated by Alembic. The Authy emulator is a second Hypercorn server "
        "in its own process; the app talks to it over HTTP as it would to api.authy.com."
    )
    add(
        "- The password step is not part of these measurements: users, enrolled phones and "
        "pending challenges are written to the database directly (phones enrolled through the "
        "emulator's control API with the registration JWT, each challenge with a real "
        "approval request in the emulator), and each browser's session cookie is signed with "
        "the app's own session serializer. The bcrypt storm measures the password step."
    )
    add(
        "- Each waiting browser is a python-socketio client over websocket with that cookie, "
        "spread over client processes of at most 2,500 browsers each."
    )
    add(
        "- Decisions are signed OneTouch callbacks (spec 2.2 bodies, `X-Authy-Signature`) "
        "posted to the app's public webhook URL at a steady rate; the clock starts just before "
        "each request is sent and stops when the browser's event handler runs. All processes "
        "stamp with CLOCK_MONOTONIC (`time.monotonic_ns`), one clock for the whole machine."
    )
    add(
        "- Memory is the server's RSS (psutil) after all N sockets are open minus before; "
        "CPU is the server process's user + system time over a window."
    )
    add(
        "- Everything runs on one machine, so the browsers, the emulator and the load "
        "generator share its cores with the server; `other load` is CPU used meanwhile by "
        "processes outside the benchmark."
    )
    add("")

    add("## Machine")
    add("")
    add(f"- {meta['cpu']}, {meta['cores']} cores, {meta['ram_gib']} GiB RAM, {meta['os']}")
    add(f"- {meta['implementation']} {meta['python']}; push2fa revision {meta['revision']}")
    add("- " + ", ".join(f"{k} {v}" for k, v in meta["packages"].items()))
    before = meta.get("before_start") or {}
    if before:
        add(
            f"- Before starting: other processes used {before.get('others_percent', 0):g} % "
            f"of a core (waited {before.get('waited_seconds', 0):g} s for quiet)"
        )
    add("")
    add("## Reproduce")
    add("")
    add("```sh")
    add("make bench          # full run: writes bench/results/<date>.json and this page")
    add("make bench-quick    # CI smoke: N = 20, under a minute, writes bench/results/tmp/")
    add("python -m bench.report bench/results/<date>.json   # re-render this page only")
    add("python -m bench.profile --n 1000 --callbacks 1000  # py-spy profile of the webhook path")
    add("python -m bench.hotpath --n 1000 --decisions 800   # CPU, SQL, hops, GC per decision")
    add("```")
    add("")
    add(f"This run: `{results['command'].strip()}`")
    add("")
    return "\n".join(out)


def write(results: Results, results_path: Path, doc: Path, chart_dir: Path) -> None:
    results = carry_over(results, results_path)
    charts = _charts(results, chart_dir)
    try:
        shown = str(results_path.relative_to(doc.parent.parent))
    except ValueError:
        shown = str(results_path)
    relative = os.path.relpath(chart_dir, doc.parent)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render(results, shown, charts, relative))


def main(argv: list[str] | None = None) -> int:
    from bench.run import CHARTS, DOC

    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--charts", type=Path, default=CHARTS)
    args = parser.parse_args(argv)
    write(json.loads(args.results.read_text()), args.results.resolve(), args.doc, args.charts)
    print(args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
