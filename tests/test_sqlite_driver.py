"""SQLite statements make one trip to aiosqlite's thread each, or none once their write
transaction holds the lock, and SQLAlchemy sees exactly what the stock four-trip cursor
gave it: rows, rowcount, lastrowid, errors, streaming."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from push2fa import db as db_module
from push2fa import sqlite_driver
from push2fa.db import Database
from push2fa.sqlite_driver import OneTripConnection, begins_write

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, unique=True, nullable=False),
    Column("state", String, nullable=False, default="pending"),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database.engine
    await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every function queued to an aiosqlite connection's thread, by name."""
    queued: list[str] = []
    real = OneTripConnection._execute

    async def counted(self: OneTripConnection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        queued.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(OneTripConnection, "_execute", counted)
    return queued


async def test_the_app_connects_to_sqlite_through_the_one_trip_connection(engine: AsyncEngine):
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, OneTripConnection)


async def test_each_statement_is_one_trip_to_the_thread(engine: AsyncEngine, trips: list[str]):
    async with engine.connect() as conn:
        await conn.execute(select(things.c.name))
        assert trips == ["_run"]  # the stock cursor: cursor, execute, fetchall, close
        await conn.execute(insert(things).values(name="a"))  # a transaction's first write
        assert trips == ["_run", "_run"]
        await conn.commit()
    assert trips == ["_run", "_run", "commit"]


# Once a write transaction holds SQLite's write lock (WAL), its small statements run on the
# loop's thread: nobody can make them wait.


@pytest.fixture
async def threads(engine: AsyncEngine) -> AsyncIterator[list[int]]:
    """The thread each statement that calls SQL `here()` ran in, as the pool's connections
    record it (a function registered on each real sqlite3 connection)."""
    seen: list[int] = []

    def here() -> int:
        seen.append(threading.get_ident())
        return 1

    def register(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection._conn.create_function("here", 0, here)

    event.listen(engine.sync_engine, "connect", register)
    await engine.dispose()  # connections made from now on carry it
    async with engine.connect():
        pass  # one made now, so no test counts its opening trips
    yield seen


async def test_after_its_first_write_a_transaction_runs_on_the_loops_thread(
    engine: AsyncEngine, trips: list[str], threads: list[int]
):
    loop_thread = threading.get_ident()
    del trips[:]
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(name="a", state=text("'x' || here()")))
        first = await conn.execute(insert(things).values(name="b", state=text("here()")))
        await conn.execute(update(things).where(things.c.name == "a").values(state="done"))
        rows = (
            await conn.execute(select(things.c.name, text("here()")).order_by(things.c.id))
        ).all()
        assert trips == ["_run"]  # only the first write made the trip
    assert trips == ["_run", "commit"]  # COMMIT may checkpoint the WAL: in the thread
    assert threads[0] != loop_thread and set(threads[1:]) == {loop_thread}
    assert first.inserted_primary_key == (2,) and [r.name for r in rows] == ["a", "b"]
    async with engine.connect() as conn:
        stored = (await conn.execute(select(things.c.name, things.c.state))).all()
    assert sorted(tuple(row) for row in stored) == [("a", "done"), ("b", "1")]


async def test_bulk_statements_reads_and_the_next_transaction_go_to_the_thread(
    engine: AsyncEngine, trips: list[str]
):
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(name="first"))
        await conn.execute(insert(things), [{"name": "m1"}, {"name": "m2"}])  # executemany
        wide = sqlite_driver.INLINE_MAX_VALUES + 1
        await conn.execute(
            select(things.c.id).where(things.c.name.in_([f"v{i}" for i in range(wide)]))
        )
        assert trips == ["_run", "_run", "_run"]
    async with engine.connect() as conn:
        await conn.execute(select(things.c.id))  # a read outside a write transaction
        await conn.execute(update(things).values(state="again"))  # the next one's first write
        await conn.execute(update(things).values(state="then"))
        await conn.rollback()
    assert trips[3:] == ["commit", "_run", "_run", "rollback"]


async def test_a_transaction_begun_by_hand_still_takes_the_lock_in_the_thread(
    engine: AsyncEngine, trips: list[str]
):
    """An explicit BEGIN opens a transaction without the write lock: reading in it takes
    nothing, so its first write still goes where waiting is harmless."""
    async with engine.connect() as conn:
        await conn.exec_driver_sql("BEGIN")
        await conn.execute(select(things.c.id))
        await conn.execute(insert(things).values(name="a"))
        await conn.execute(update(things).values(state="done"))
        await conn.commit()
    assert trips == ["_run", "_run", "_run", "commit"]


async def test_a_rolled_back_or_failed_transaction_keeps_nothing_of_the_loops_statements(
    engine: AsyncEngine,
):
    async with engine.connect() as conn:
        await conn.execute(insert(things).values(name="kept"))
        await conn.commit()
        await conn.execute(insert(things).values(name="gone"))
        await conn.execute(update(things).values(state="changed"))  # on the loop
        await conn.rollback()
        await conn.execute(insert(things).values(name="also gone"))
        with pytest.raises(IntegrityError):  # fails on the loop exactly as in the thread
            await conn.execute(insert(things).values(name="kept"))
        await conn.rollback()
        stored = (await conn.execute(select(things.c.name, things.c.state))).all()
    assert [tuple(row) for row in stored] == [("kept", "pending")]


async def test_a_first_write_waiting_for_another_process_does_not_hold_the_loop(
    engine: AsyncEngine, tmp_path: Path
):
    """Another process's transaction holds the write lock for 0.3 s: the first write waits
    in the thread (SQLite's busy handler) while the loop goes on, then the transaction's
    later statements run on the loop and it commits."""
    other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, other.execute, "COMMIT")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        started = loop.time()
        async with engine.begin() as conn:
            await conn.execute(insert(things).values(name="waited"))
            waited, ticks_then = loop.time() - started, ticks
            await conn.execute(update(things).values(state="done"))
    finally:
        ticker.cancel()
        other.close()
    assert waited >= 0.25 and ticks_then >= 10  # the loop ran while the write waited
    async with engine.connect() as conn:
        assert (await conn.execute(select(things.c.state))).scalars().all() == ["done"]


async def test_nothing_runs_on_the_loop_without_wal(trips: list[str]):
    database = Database("sqlite+aiosqlite://")  # in memory: journal mode "memory"
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            del trips[:]
            await conn.execute(insert(things).values(name="a"))
            await conn.execute(update(things).values(state="b"))
        assert trips == ["_run", "_run", "commit"]
    finally:
        await database.dispose()


async def test_rows_rowcount_and_lastrowid_are_what_sqlalchemy_expects(engine: AsyncEngine):
    async with engine.begin() as conn:
        first = await conn.execute(insert(things).values(name="a"))
        second = await conn.execute(insert(things).values(name="b"))
        assert (first.inserted_primary_key, second.inserted_primary_key) == ((1,), (2,))
        many = await conn.execute(insert(things), [{"name": "c"}, {"name": "d"}])
        assert many.rowcount == 2
        rows = (await conn.execute(select(things.c.name).order_by(things.c.id))).all()
        assert [row.name for row in rows] == ["a", "b", "c", "d"]
        plain = await conn.execute(update(things).where(things.c.id > 2).values(state="x"))
        assert plain.rowcount == 2
        returned = await conn.execute(
            update(things)
            .where(things.c.state == "pending")
            .values(state="done")
            .returning(things.c.id)
        )
        assert sorted(returned.scalars().all()) == [1, 2]
        assert returned.rowcount == 2  # final only once every RETURNING row was read
        nothing = await conn.execute(select(things.c.id).where(things.c.name == "none"))
        assert nothing.first() is None


async def test_a_failed_statement_raises_as_before_and_the_connection_goes_on(
    engine: AsyncEngine,
):
    async with engine.connect() as conn:
        await conn.execute(insert(things).values(name="a"))
        with pytest.raises(IntegrityError):
            await conn.execute(insert(things).values(name="a"))
        await conn.rollback()
        await conn.execute(insert(things).values(name="b"))
        await conn.commit()
        names = (await conn.execute(select(things.c.name))).scalars().all()
    assert names == ["b"]


async def test_streamed_results_arrive_whole_and_in_order(engine: AsyncEngine):
    async with engine.begin() as conn:
        await conn.execute(insert(things), [{"name": f"n{i:03}"} for i in range(250)])
    async with engine.connect() as conn:
        stream = await conn.stream(select(things.c.name).order_by(things.c.id))
        names = [row.name async for row in stream]
        partitions = await conn.stream(select(things.c.id).order_by(things.c.id))
        chunks = [len(chunk) async for chunk in partitions.partitions(100)]
        mixed = await conn.stream(select(things.c.id).order_by(things.c.id))
        one, two, rest = await mixed.fetchone(), await mixed.fetchmany(2), await mixed.all()
    assert names == [f"n{i:03}" for i in range(250)]
    assert chunks == [100, 100, 50]
    assert (one, two, rest) == ((1,), [(2,), (3,)], [(i,) for i in range(4, 251)])


async def test_the_same_results_as_the_stock_aiosqlite_driver(engine: AsyncEngine, tmp_path: Path):
    """The same statements through SQLAlchemy's own aiosqlite connection, side by side."""
    stock = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")
    try:
        seen: list[list[Any]] = []
        for each in (engine, stock):
            async with each.begin() as conn:
                await conn.run_sync(metadata.create_all)
                await conn.execute(insert(things), [{"name": n} for n in "xyz"])
                changed = await conn.execute(
                    update(things)
                    .where(things.c.name != "y")
                    .values(state="done")
                    .returning(things.c.id, things.c.state)
                )
                result = await conn.execute(text("SELECT id, name, state FROM things ORDER BY id"))
                seen.append(
                    [
                        sorted(tuple(row) for row in changed.all()),
                        changed.rowcount,
                        [tuple(row) for row in result.all()],
                        list(result.keys()),
                    ]
                )
        assert seen[0] == seen[1]
    finally:
        await stock.dispose()


# Write transactions take turns on the event loop (WriteTurns), not in SQLite's busy handler.


@pytest.fixture
def no_busy_wait(engine: AsyncEngine) -> AsyncEngine:
    """The engine with SQLite's own busy handler off: a writer that found the write lock
    taken would fail at once, so only the turns can keep concurrent writers apart."""

    def no_wait(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=0")

    event.listen(engine.sync_engine, "connect", no_wait)
    return engine


async def _write_slowly(engine: AsyncEngine, name: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(name=name))
        await asyncio.sleep(0.02)  # the transaction stays open across a trip to the loop
        await conn.execute(update(things).where(things.c.name == name).values(state="done"))


async def test_concurrent_write_transactions_take_turns(no_busy_wait: AsyncEngine):
    names = [f"w{i}" for i in range(12)]
    await asyncio.gather(*(_write_slowly(no_busy_wait, name) for name in names))
    async with no_busy_wait.connect() as conn:
        done = (await conn.execute(select(things.c.name).where(things.c.state == "done"))).all()
    assert sorted(row.name for row in done) == sorted(names)


async def test_the_turn_comes_back_after_rollback_failure_and_close(
    no_busy_wait: AsyncEngine,
):
    async with no_busy_wait.connect() as conn:  # rolled back
        await conn.execute(insert(things).values(name="gone"))
        await conn.rollback()
    with pytest.raises(IntegrityError):  # failed: SQLite had begun, SQLAlchemy rolls back
        async with no_busy_wait.begin() as conn:
            await conn.execute(insert(things).values(name="twice"))
            await conn.execute(insert(things).values(name="twice"))
    async with no_busy_wait.connect() as conn:  # closed with the transaction open
        await conn.execute(insert(things).values(name="abandoned"))
        await conn.invalidate()
    async with asyncio.timeout(2):  # the turns wait 10 s: a lost turn fails here
        await _write_slowly(no_busy_wait, "after")


async def test_the_turn_comes_back_when_a_writing_connection_is_stopped(
    no_busy_wait: AsyncEngine,
):
    # The pool's forced close (terminate) stops aiosqlite's thread without waiting for it.
    async with no_busy_wait.connect() as conn:
        await conn.execute(insert(things).values(name="stopped"))
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        stopped = driver.stop()
        assert stopped is not None
        await stopped
        await conn.invalidate()
    async with asyncio.timeout(2):
        await _write_slowly(no_busy_wait, "after")


async def test_a_writer_kept_waiting_past_the_busy_timeout_fails_as_sqlite_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        async with database.engine.begin() as holder:
            await holder.execute(insert(things).values(name="first"))
            with pytest.raises(OperationalError, match="database is locked"):
                async with database.engine.begin() as conn:
                    await conn.execute(insert(things).values(name="second"))
        async with database.engine.begin() as conn:  # and the turn moves on afterwards
            await conn.execute(insert(things).values(name="third"))
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1)",
        "  update t SET a = 1",
        "\n-- why\nDELETE FROM t",
        "/* a\nb */ REPLACE INTO t VALUES (1)",
    ],
)
def test_statements_that_open_a_write_transaction(sql: str):
    assert begins_write(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "PRAGMA busy_timeout=0",
        "-- insert\nSELECT 1",
        "inserted",
        "CREATE TABLE updates (a)",
    ],
)
def test_statements_that_do_not(sql: str):
    assert not begins_write(sql)
