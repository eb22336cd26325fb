"""The SQLite database: private to its owner, and its pooled connections handed back clean."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from push2fa.config import load_settings
from push2fa.db import SQLITE_BUSY_TIMEOUT_MS, SQLITE_CACHE_KIB, Database
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


async def test_every_pooled_sqlite_connection_gets_the_settings_it_depends_on(tmp_path: Path):
    """WAL (readers never wait for the webhook's write), foreign keys (off by default),
    the busy timeout, NORMAL sync, and a page cache bounded per connection, on the
    first connection and on one opened while it is busy."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'pragmas.db'}")
    expected = {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": SQLITE_BUSY_TIMEOUT_MS,
        "synchronous": 1,  # NORMAL
        "cache_size": -SQLITE_CACHE_KIB,
    }
    try:
        async with database.engine.connect() as first, database.engine.connect() as second:
            for conn in (first, second):
                raw = await _raw_sqlite(conn)
                found = {name: raw.execute(f"PRAGMA {name}").fetchone()[0] for name in expected}
                assert found == expected
    finally:
        await database.dispose()


async def _raw_sqlite(conn: AsyncConnection) -> sqlite3.Connection:
    """The sqlite3 connection under SQLAlchemy and aiosqlite."""
    raw = await conn.get_raw_connection()
    inner: sqlite3.Connection = raw.driver_connection._conn  # type: ignore[union-attr]
    return inner


async def test_a_connection_returned_with_its_transaction_open_is_rolled_back(tmp_path: Path):
    """The pool's reset is ours on SQLite: a write left uncommitted by whoever held the
    connection must not reach the next holder, nor keep the write lock from others."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'reset.db'}")
    try:
        async with database.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        async with database.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            # Behind SQLAlchemy's back, so only the pool's reset can end it.
            await raw.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            await raw.driver_connection.execute("INSERT INTO t VALUES (1)")  # type: ignore[union-attr]
            assert (await _raw_sqlite(conn)).in_transaction
        other = Database(database.url)  # a second pool: another process's writer
        try:
            async with other.engine.begin() as writer:  # would wait 10 s on the lock
                await writer.execute(text("INSERT INTO t VALUES (2)"))
        finally:
            await other.dispose()
        async with database.engine.connect() as conn:
            assert not (await _raw_sqlite(conn)).in_transaction
            rows = (await conn.execute(text("SELECT x FROM t"))).scalars().all()
        assert rows == [2]
    finally:
        await database.dispose()


async def test_a_committed_session_goes_back_to_the_pool_without_a_rollback(tmp_path: Path):
    """After a commit there is nothing to roll back, and no trip to aiosqlite's thread is
    spent on it (SQLAlchemy's own pool reset made one per transaction)."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'reset.db'}")
    try:
        async with database.session() as db:
            await db.execute(text("CREATE TABLE t (x INTEGER)"))
            await db.commit()
        rollbacks: list[str] = []
        async with database.session() as db:
            driver = (await (await db.connection()).get_raw_connection()).driver_connection
            real_rollback = driver.rollback  # type: ignore[union-attr]

            async def counted_rollback() -> None:
                rollbacks.append("rollback")
                await real_rollback()

            driver.rollback = counted_rollback  # type: ignore[union-attr]
            await db.execute(text("INSERT INTO t VALUES (1)"))
            await db.commit()
        assert rollbacks == []
        async with database.session() as db:  # the same pooled connection, still usable
            await db.execute(text("INSERT INTO t VALUES (2)"))
            # Closed uncommitted: this one is rolled back, by SQLAlchemy or the reset.
        assert rollbacks == ["rollback"]
        async with database.session() as db:
            rows = (await db.execute(text("SELECT x FROM t"))).scalars().all()
        assert rows == [1]
    finally:
        await database.dispose()
