"""SQLite statements make one trip to aiosqlite's thread each, and SQLAlchemy sees exactly
what the stock four-trip cursor gave it: rows, rowcount, lastrowid, errors, streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from push2fa.db import Database
from push2fa.sqlite_driver import OneTripConnection

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
    async with engine.begin() as conn:
        await conn.execute(insert(things).values(name="a"))
        await conn.execute(select(things.c.name))
        await conn.execute(update(things).values(state="done").returning(things.c.id))
        del trips[:]
        await conn.execute(select(things.c.id, things.c.name).where(things.c.name == "a"))
        assert trips == ["_run"]  # the stock cursor: cursor, execute, fetchall, close
    assert trips == ["_run", "commit"]


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
