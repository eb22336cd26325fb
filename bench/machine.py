"""What the figures were measured on: a benchmark without its machine is not a result."""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from multiprocessing.connection import Connection
from typing import Any

import psutil

PACKAGES = (
    "push2fa",
    "quart",
    "hypercorn",
    "python-socketio",
    "python-engineio",
    "aiohttp",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "redis",
    "bcrypt",
    "wsproto",
    "h11",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    revision = out.stdout.strip() or "unknown"
    return f"{revision}{' (with uncommitted changes)' if dirty.stdout.strip() else ''}"


def describe() -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": psutil.cpu_count(logical=True),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "packages": _versions(),
        "revision": _git_revision(),
    }


class LoadWatcher:
    """Samples, once a second, how busy the machine is and how much of that is *not* this
    benchmark (other users of a shared machine), so a reader can tell a quiet run from a
    disturbed one. Figures are in % of one core, like every CPU figure in the report.

    It runs in a process of its own, so its scans never hold the GIL of a process whose
    timing is being measured.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.result: dict[str, float] = {}
        self._conn: Connection | None = None
        self._proc: mp.process.BaseProcess | None = None

    def __enter__(self) -> LoadWatcher:
        context = mp.get_context("spawn")
        ours, theirs = context.Pipe()
        self._proc = context.Process(
            target=_watch, args=(theirs, os.getpid(), self.interval), daemon=True
        )
        self._proc.start()
        theirs.close()
        self._conn = ours
        return self

    def __exit__(self, *_: object) -> None:
        if self._conn is None or self._proc is None:
            return
        try:
            self._conn.send("stop")
            if self._conn.poll(10):
                self.result = self._conn.recv()
        except (EOFError, OSError):
            pass
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()

    def summary(self) -> dict[str, float]:
        return self.result or {
            "machine_percent": 0.0,
            "others_percent": 0.0,
            "others_max_percent": 0.0,
        }


def _watch(conn: Connection, root_pid: int, interval: float) -> None:
    cores = psutil.cpu_count() or 1
    root = psutil.Process(root_pid)
    psutil.cpu_percent(None)
    tracked: dict[int, psutil.Process] = {}
    samples: list[tuple[float, float]] = []
    while not conn.poll(interval):
        machine = psutil.cpu_percent(None) * cores
        try:
            ours = {root_pid, *(child.pid for child in root.children(recursive=True))}
        except psutil.NoSuchProcess:
            break
        others = 0.0
        for proc in psutil.process_iter():
            if proc.pid in ours:
                continue
            known = tracked.setdefault(proc.pid, proc)
            try:
                others += known.cpu_percent(None)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                tracked.pop(proc.pid, None)
        samples.append((machine, others))
    usable = samples[1:] or samples  # a process's first reading is 0 by construction
    if usable:
        conn.send(
            {
                "machine_percent": round(sum(m for m, _ in usable) / len(usable), 1),
                "others_percent": round(sum(o for _, o in usable) / len(usable), 1),
                "others_max_percent": round(max(o for _, o in usable), 1),
            }
        )
    else:
        conn.send({})


def others_busy_percent(seconds: float = 3.0) -> float:
    """CPU used by processes outside this benchmark over a short window (% of one core)."""
    with LoadWatcher(interval=0.5) as watcher:
        time.sleep(seconds)
    return watcher.summary()["others_percent"]
