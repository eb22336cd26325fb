"""The installed `push2fa` command, run as a user runs it: a subprocess (push2fa/cli.py)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

PUSH2FA = Path(sys.executable).parent / "push2fa"
TIMEOUT = 120


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `push2fa` in an empty folder (no stray .env) with only the given settings."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PUSH2FA_", "AUTHY_"))}
    environ |= {"PUSH2FA_INSTANCE_PATH": str(tmp_path / "instance"), **env}
    return subprocess.run(
        [str(PUSH2FA), *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def tables_in(database: Path) -> set[str]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_the_command_is_installed():
    assert PUSH2FA.is_file(), f"{PUSH2FA} missing: is the package installed?"


def test_db_upgrade_creates_the_tables(tmp_path: Path):
    database = tmp_path / "data" / "app.db"

    result = run(tmp_path, "db", "upgrade", PUSH2FA_DATABASE_URL=f"sqlite+aiosqlite:///{database}")

    assert result.returncode == 0, result.stderr
    assert {"users", "audit_events", "used_tokens", "alembic_version"} <= tables_in(database)


def test_db_upgrade_defaults_to_sqlite_in_the_instance_folder(tmp_path: Path):
    result = run(tmp_path, "db", "upgrade")

    assert result.returncode == 0, result.stderr
    assert "users" in tables_in(tmp_path / "instance" / "push2fa.db")


def test_db_upgrade_twice_is_fine(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"

    first = run(tmp_path, "db", "upgrade", PUSH2FA_DATABASE_URL=url)
    second = run(tmp_path, "db", "upgrade", PUSH2FA_DATABASE_URL=url)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    with sqlite3.connect(tmp_path / "app.db") as conn:
        assert len(conn.execute("SELECT version_num FROM alembic_version").fetchall()) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUSH2FA_BCRYPT_ROUNDS", "abc"),
        ("PUSH2FA_DATABASE_URL", "mysql://"),
        ("PUSH2FA_PUBLIC_URL", "ftp://x"),
    ],
)
def test_bad_setting_exits_non_zero_naming_it(tmp_path: Path, name: str, value: str):
    result = run(tmp_path, "db", "upgrade", **{name: value})

    assert result.returncode != 0
    assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_production_without_secret_key_exits_naming_it(tmp_path: Path):
    result = run(tmp_path, "db", "upgrade", PUSH2FA_ENV="production")

    assert result.returncode != 0
    assert "PUSH2FA_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_several_workers_needs_redis(tmp_path: Path):
    result = run(tmp_path, "serve", "--workers", "2")

    assert result.returncode != 0
    assert "PUSH2FA_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "instance" / "push2fa.db").exists(), "nothing should be migrated"


def test_unknown_command_exits_with_usage(tmp_path: Path):
    result = run(tmp_path, "frobnicate")

    assert result.returncode == 2
    assert "usage: push2fa" in result.stderr


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("pyngrok") is not None,
    reason="pyngrok is installed; this checks the message for when it is not",
)
def test_ngrok_without_the_extra_says_how_to_install_it(tmp_path: Path):
    result = run(tmp_path, "serve", PUSH2FA_NGROK="1")

    assert result.returncode != 0
    assert "ngrok extra" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "instance" / "push2fa.db").exists(), "nothing should be migrated"


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--bind", "0.0.0.0:0"),
        ("serve", "--bind", "127.0.0.1:0", "--bind", "[::]:0"),
        ("emulator", "--host", "0.0.0.0", "--port", "0"),
    ],
    ids=["serve-all-interfaces", "serve-one-public-bind", "push-service-all-interfaces"],
)
def test_development_configuration_on_a_public_address_is_refused(tmp_path: Path, args):
    """An attacker on the network must never meet the development door (derived keys, the
    control API): start-up stops before anything listens, naming the setting to change."""
    result = run(tmp_path, *args)

    assert result.returncode != 0
    assert "PUSH2FA_ENV" in result.stderr
    assert "0.0.0.0" in result.stderr or "[::]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "instance" / "push2fa.db").exists(), "nothing should be migrated"


def _serve_until_running(tmp_path: Path, *args: str, **env: str) -> str:
    """Start `push2fa` with ``args``, wait until it listens, stop it; its output."""
    import signal
    import time

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PUSH2FA_", "AUTHY_"))}
    environ |= {"PUSH2FA_INSTANCE_PATH": str(tmp_path / "instance"), **env}
    log = tmp_path / "out.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(PUSH2FA), *args], cwd=tmp_path, env=environ, stdout=out, stderr=out
        )
        try:
            deadline = time.monotonic() + 60
            while "Running on" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(3)  # time for a second worker to say it too
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    return log.read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_says_each_start_up_line_once(tmp_path: Path, workers: int):
    import asyncio

    from tests.services import redis_url

    url = asyncio.run(redis_url())  # skips (or fails when services are required) without
    output = _serve_until_running(
        tmp_path,
        "serve",
        "--bind",
        f"127.0.0.1:{_free_port()}",
        "--workers",
        str(workers),
        PUSH2FA_REDIS_URL=url,
    )

    assert output.count("Running on") == 1, output
    assert "WARNING" not in output and "Traceback" not in output, output
    assert output.count("push2fa at ") == 1, output


def test_the_push_service_says_each_start_up_line_once(tmp_path: Path):
    output = _serve_until_running(tmp_path, "emulator", "--port", str(_free_port()))

    assert output.count("Running on") == 1, output
    assert output.count("push service at") == 1, output
    assert "WARNING" not in output and "Traceback" not in output, output


def test_the_push_service_on_its_own_serves_the_approver(tmp_path: Path):
    """A drop-in for api.authy.com runs as its own server; its users (made with `users/new`)
    need the Approver there to add a phone."""
    import signal
    import time
    import urllib.request

    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PUSH2FA_", "AUTHY_"))}
    environ |= {
        "PUSH2FA_INSTANCE_PATH": str(tmp_path / "instance"),
        "PUSH2FA_PUBLIC_URL": f"http://localhost:{port}",
    }
    log = tmp_path / "out.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(PUSH2FA), "emulator", "--port", str(port)],
            cwd=tmp_path,
            env=environ,
            stdout=out,
            stderr=out,
        )
        try:
            deadline = time.monotonic() + 60
            while "Running on" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            url = f"http://127.0.0.1:{port}/_emulator/approver/"
            with urllib.request.urlopen(url, timeout=30) as resp:
                status, page = resp.status, resp.read().decode()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)

    assert status == 200
    assert "An app registered my e-mail" in page, page[:500]
    assert f"Approver (the phone app) at http://localhost:{port}" in log.read_text()
