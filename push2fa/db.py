"""The database engine and session factory, one per app.

SQLite is the embedded default, so every connection gets WAL (readers never block the
webhook's write), foreign keys (off by default in SQLite), a busy timeout (several
workers may write at once) and a small page cache (the kernel caches the file once; the
pool would otherwise cache it fifteen times). PostgreSQL needs none of that and uses the
same code.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState

from push2fa import sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = 10_000
# SQLAlchemy's default ceiling (5 pooled + 10 overflow), with every connection kept once
# opened: an overflow connection used to be closed when returned, and the next burst then
# opened it again, a new thread and four pragmas per aiosqlite connection (a new server
# process per PostgreSQL one), paid by whichever webhook happened to need it.
POOL_SIZE = 15
# SQLite's own page cache, per connection (negative: KiB). Its default, 2 MiB, is kept by
# each of the 15 pooled connections for the same small file the kernel already caches:
# up to 30 MiB, which filled as thousands of waiting pages were read at connect and
# measured about 1 KB of every waiting page's memory (docs/benchmarks-changes.md,
# change 12). The webhook's hot pages (a few index and table pages) fit in far less.
SQLITE_CACHE_KIB = 256


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    mode = cursor.fetchone()
    driver = dbapi_connection.driver_connection
    if isinstance(driver, sqlite_driver.OneTripConnection):
        # WAL took (an in-memory database stays "memory"): see OneTripConnection.runs_here.
        driver.wal = mode is not None and str(mode[0]).lower() == "wal"
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def _sqlite_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
    """Roll a connection back on its way into the pool only if it still has a transaction
    open. The pool's own reset rolls back every time, and a Session closes its connection
    right after each commit: one more trip to aiosqlite's thread per transaction, for
    nothing. `in_transaction` is SQLite's own flag (sqlite3_get_autocommit), read without
    a query. A connection the pool cannot reset safely (garbage-collected outside the
    loop) is discarded by the pool instead, as before."""
    if not state.asyncio_safe or state.terminate_only:
        return
    if dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only, before SQLite does: it holds
    password hashes and sessions. SQLite gives the -wal and -shm files the database
    file's mode, so they are private too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str) -> AsyncEngine:
    """An engine for `url`, with SQLite's folder created and its pragmas applied."""
    parsed = make_url(url)
    # A local SQLite file never drops a connection: no ping round trip per checkout.
    kwargs: dict[str, Any] = {"pool_pre_ping": parsed.get_backend_name() != "sqlite"}
    in_memory = parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
    if not in_memory:  # (an in-memory SQLite database has a one-connection pool of its own)
        kwargs.update(pool_size=POOL_SIZE, max_overflow=0)
    if parsed.get_backend_name() == "sqlite":
        if not in_memory:
            _create_private(Path(str(parsed.database)))
        # The same arguments SQLAlchemy would pass to aiosqlite.connect, to a connection
        # whose statements each make one trip to its thread instead of four.
        args, connect_args = parsed.get_dialect()().create_connect_args(parsed)
        connect_args["timeout"] = SQLITE_BUSY_TIMEOUT_MS / 1000
        kwargs["async_creator"] = sqlite_driver.connector(*args, **connect_args)
        kwargs["pool_reset_on_return"] = None  # _sqlite_reset does it, when needed
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "reset", _sqlite_reset)
    return engine


class Database:
    """Owns the engine and hands out one AsyncSession per request or task."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> AsyncSession:
        """A new session, used as `async with db.session() as session:` (it closes on exit;
        no generator wrapped around it, which cost every request a few more frames)."""
        return self.sessions()

    async def ping(self) -> bool:
        """True when a trivial query succeeds: what /readyz reports."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
