"""The benchmark's child processes: started in their own session, known by pid, and always
stopped when the run ends — on success, on an exception and on SIGTERM/Ctrl-C.

Servers get their listening socket from the harness (bound to 127.0.0.1:0 here, passed as
an inherited file descriptor), so the port is known before the app is configured and
nothing can take it in between. Each child is stopped through its own process group, which
also reaches the Hypercorn worker processes a multi-worker server spawns.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one: 10,000 sockets need it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def reserve_listener() -> socket.socket:
    """A TCP socket bound to a free loopback port, inheritable by a child server."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.set_inheritable(True)
    return listener


def url_of(listener: socket.socket) -> str:
    return f"http://{HOST}:{listener.getsockname()[1]}"


class Children:
    """Every process this run started. `stop_all` is registered with atexit as well."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        atexit.register(self.stop_all)

    def spawn(
        self,
        name: str,
        module: str,
        args: list[str],
        *,
        env: dict[str, str],
        log_path: Path,
        listener: socket.socket,
    ) -> subprocess.Popen[bytes]:
        fd = listener.fileno()
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, "--fd", str(fd), *args],
                env=env,
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        listener.close()  # the child owns it now
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> int | None:
        """SIGTERM the child's process group, wait, then SIGKILL what is left."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        # Workers a server spawned may outlive their parent by a moment.
        _signal_group(proc.pid, signal.SIGKILL)
        return proc.returncode

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def install_signal_handlers() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks and atexit stop the children."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


async def wait_http_ok(
    url: str, proc: subprocess.Popen[bytes], timeout: float, log_path: Path
) -> None:
    """Wait until `url` answers 200; fail early (with the log's tail) if the child died."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode}:\n{_tail(log_path)}")
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
