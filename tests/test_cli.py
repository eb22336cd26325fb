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
