"""The development SQLite database holds password hashes: only its owner may read it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from push2fa.config import load_settings
from push2fa.db import Database
from push2fa.migrate import upgrade_url


async def test_the_default_sqlite_database_and_its_wal_files_are_private(tmp_path: Path):
    old_umask = os.umask(0o022)  # the usual umask, which would leave the file world-readable
    try:
        settings = load_settings(environ={"PUSH2FA_INSTANCE_PATH": str(tmp_path / "instance")})
        await upgrade_url(settings.database_url)
        database = Database(settings.database_url)
        async with database.engine.connect() as conn:
            await conn.execute(text("SELECT count(*) FROM users"))
            files = sorted((tmp_path / "instance").glob("push2fa.db*"))
            modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in files}
        await database.dispose()
    finally:
        os.umask(old_umask)

    assert {"push2fa.db", "push2fa.db-wal", "push2fa.db-shm"} <= set(modes)
    assert set(modes.values()) == {0o600}, modes
