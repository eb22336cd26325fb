"""aiosqlite connections whose statements each make one trip to the connection's thread.

aiosqlite runs a sqlite3 connection in a thread of its own and every call on it is a trip
there and back: a queue put, a thread wake-up and a wake-up of the event loop. Through
SQLAlchemy's adapter a statement is four such trips (make a cursor, execute, fetch, close),
16 per push decision. Here the cursor is made, executed, read to the end and closed in one
function run in that thread; SQLAlchemy gets the rows, description, rowcount and lastrowid
it asked for, exactly as the four trips gave them.

Written here rather than taken from a package: no maintained driver does this for
aiosqlite, and what it relies on is aiosqlite's own queueing of a function to its thread
(`Connection._execute`, the primitive every aiosqlite call is built on) and the
aiosqlite cursor interface SQLAlchemy's adapter calls (public aiosqlite API).

Write transactions also take turns here, on the event loop (`WriteTurns`), instead of
inside SQLite. SQLite lets one connection write at a time; the others sleep in its busy
handler (1, 2, 5, 10 … 100 ms between tries) in their threads, so a waiting webhook woke
late, and under overload a writer could lose every try for the whole busy timeout and
fail with "database is locked" (seen at 40 callbacks a second with a profiler attached).
Queued on the loop, the next writer starts the moment the last one commits, in arrival
order. SQLite's own lock still guards against other processes.

Once a write transaction holds SQLite's write lock in WAL mode, nothing can make its next
statements wait: no other connection can write, and readers never block a writer. Those
statements (a webhook's UPDATE and audit row after its replay-nonce INSERT) then run on
the event loop's own thread, a few dozen microseconds of SQLite each, instead of a trip
to the thread and back (about 0.15-0.35 ms of waiting each, measured under load). What
could wait or take long still goes to the thread: a transaction's first write (it may
wait for another process's lock), COMMIT and ROLLBACK (a commit may checkpoint the WAL,
which writes and syncs the database file), every read outside a write transaction, and
bulk statements (many rows' values).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Coroutine, Generator, Sequence
from functools import partial
from threading import Thread
from typing import Any

import aiosqlite

_Description = tuple[tuple[Any, ...], ...] | None
_Outcome = tuple[_Description, list[Any], int, int | None]

# The statements before which Python's sqlite3 opens a transaction (BEGIN) when none is
# open: INSERT, UPDATE, DELETE and REPLACE, after any leading blanks and comments. From
# then until COMMIT or ROLLBACK the connection may hold SQLite's write lock.
_WRITE = re.compile(
    r"(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*(?:insert|update|delete|replace)\b",
    re.IGNORECASE | re.DOTALL,
)


def begins_write(operation: str) -> bool:
    return _WRITE.match(operation) is not None


# A statement with more bound values than this carries many rows (an INSERT of a batch):
# it goes to the thread even while the write lock is held, so the loop runs only small
# statements itself.
INLINE_MAX_VALUES = 64


def _values(parameters: Any) -> int:
    return 0 if parameters is None else len(parameters)


class WriteTurns:
    """One write transaction at a time per database file in this process, in the order
    they asked. Waiting longer than SQLite's busy timeout fails the same way SQLite
    would, so a caller sees no new kind of error."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._lock.acquire()
        except TimeoutError:
            raise sqlite3.OperationalError("database is locked") from None

    def give_back(self) -> None:
        self._lock.release()


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """In the connection's thread: the whole life of one cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        # rowcount is final only once every row of an UPDATE … RETURNING has been read.
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor:
    """What SQLAlchemy's aiosqlite adapter uses of an aiosqlite cursor, with each execute
    one trip. Opening and closing it cost nothing: there is no sqlite3 cursor between
    statements. All rows are read with the statement, so fetching is local."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.description: _Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[Any] = []
        self._next = 0  # rows before this one were fetched (no copying per fetch)

    def __await__(self) -> Generator[Any, None, OneTripCursor]:
        return self._itself().__await__()

    async def _itself(self) -> OneTripCursor:
        return self

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _do(self, operation: str, parameters: Any, many: bool) -> OneTripCursor:
        connection = self._connection
        await connection.before(operation)
        try:
            outcome: _Outcome
            if connection.runs_here(parameters, many):
                outcome = _run(connection._conn, operation, parameters, many)
            else:
                outcome = await connection._execute(  # type: ignore[no-untyped-call]
                    _run, connection._conn, operation, parameters, many
                )
                connection.wrote(operation)
        finally:
            connection.settle()
        self.description, self._rows, self.rowcount, self.lastrowid = outcome
        self._next = 0
        return self

    async def execute(self, operation: str, parameters: Any = None) -> OneTripCursor:
        return await self._do(operation, parameters, many=False)

    async def executemany(self, operation: str, parameters: Sequence[Any]) -> OneTripCursor:
        return await self._do(operation, parameters, many=True)

    async def fetchall(self) -> list[Any]:
        rows = self._rows[self._next :] if self._next else self._rows
        self._rows, self._next = [], 0
        return rows

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = self.arraysize if size is None else size
        rows = self._rows[self._next : self._next + count]
        self._next += len(rows)
        return rows

    async def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def close(self) -> None:
        self._rows, self._next = [], 0


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors are `OneTripCursor`s, and whose write
    transactions wait for their turn (`WriteTurns`) before their first write."""

    def __init__(
        self, connector: Callable[[], sqlite3.Connection], turns: WriteTurns | None = None
    ) -> None:
        super().__init__(connector, 64)
        self._turns = turns
        self._writing = False
        # Set by the app once `PRAGMA journal_mode=WAL` took (push2fa.db): in other modes a
        # writer may still have to wait for readers at COMMIT or when its cache spills.
        self.wal = False
        self._locked = False  # this connection's open transaction holds the write lock

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    async def before(self, operation: str) -> None:
        """Wait for this connection's turn if `operation` opens a write transaction."""
        if self._turns is not None and not self._writing and begins_write(operation):
            await self._turns.take()
            self._writing = True

    def runs_here(self, parameters: Any, many: bool) -> bool:
        """Whether a statement may run on the calling (event loop's) thread: only while
        this connection's transaction holds SQLite's write lock in WAL mode, so it cannot
        wait for anyone, and only a single statement with few values."""
        return (
            self._locked
            and self.wal
            and not many
            and self._connection is not None
            and self._connection.in_transaction
            and _values(parameters) <= INLINE_MAX_VALUES
        )

    def wrote(self, operation: str) -> None:
        """`operation` succeeded in the thread; if it wrote, SQLite now holds this
        connection's write lock until its transaction ends."""
        if (
            not self._locked
            and self._connection is not None
            and self._connection.in_transaction
            and begins_write(operation)
        ):
            self._locked = True

    def settle(self, closing: bool = False) -> None:
        """Give the turn back once no transaction is open (after COMMIT or ROLLBACK, or
        a write that failed before SQLite began one), or when the connection is going
        away: SQLite rolls its transaction back as it closes."""
        ended = closing or self._connection is None or not self._connection.in_transaction
        if ended:
            self._locked = False
        if self._writing and ended:
            self._writing = False
            assert self._turns is not None
            self._turns.give_back()

    async def commit(self) -> None:
        try:
            await super().commit()
        finally:
            self.settle()

    async def rollback(self) -> None:
        try:
            await super().rollback()
        finally:
            self.settle()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self.settle(closing=True)

    def stop(self) -> asyncio.Future | None:  # type: ignore[type-arg]
        try:
            return super().stop()
        finally:
            self.settle(closing=True)


def connector(database: str, **kwargs: Any) -> Callable[[], Coroutine[Any, Any, OneTripConnection]]:
    """An `async_creator` for SQLAlchemy: opens `database` as aiosqlite.connect would. Its
    connections share one `WriteTurns`, waiting as long as sqlite3's `timeout`."""
    turns = WriteTurns(float(kwargs.get("timeout", 5.0)))

    # Made in the connection's thread, used there and, between two trips, on the loop's
    # (`OneTripConnection.runs_here`): never by both at once.
    kwargs = {**kwargs, "check_same_thread": False}

    async def connect() -> OneTripConnection:
        connection = OneTripConnection(partial(sqlite3.connect, database, **kwargs), turns)
        # As SQLAlchemy does for its own aiosqlite connections: a connection nobody closed
        # must not keep the interpreter from exiting (aiosqlite < 0.22 was the thread).
        thread = connection if isinstance(connection, Thread) else connection._thread
        thread.daemon = True
        await connection
        return connection

    return connect
