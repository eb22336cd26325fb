"""Benchmark-only routes, registered on the harness's own app instance, never in push2fa.

`GET /bench/status` is the polling baseline: what the seed app's waiting page asked every
5 s — the status of the challenge bound to this browser's session — answered from the
same database row the push path reads. The `/bench/stats`, `/bench/reset` and
`/bench/lag/*` routes let the harness read the in-process instruments (event-loop lag,
traffic counts) of the worker that answers.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import aiosqlite.core
from quart import Blueprint, current_app, session
from sqlalchemy import event

from bench.lag import LagMonitor
from bench.traffic import TrafficCounter
from push2fa import services
from push2fa.domain import challenges
from push2fa.domain.login_flow import SESSION_KEY
from push2fa.web.csrf import csrf_exempt
from push2fa.web.policy import public

blueprint = Blueprint("bench", __name__, url_prefix="/bench")

EXTENSION_KEY = "bench"
# Called by the load harness, never by a browser; the routes exist only on its own app.
HARNESS_ONLY = "benchmark harness control, registered only on the bench's own app"
Reply = tuple[dict[str, Any], int]


class DatabaseCounter:
    """SQL statements the app sends, and (SQLite) hops to aiosqlite's connection threads:
    each hop is a queue put, a thread wake-up and a wake-up of the loop to resume, so
    their number per decision is where a webhook's database time goes."""

    def __init__(self) -> None:
        self.statements = 0
        self.thread_hops = 0
        self.connections_opened = 0

    def reset(self) -> None:
        self.statements = self.thread_hops = self.connections_opened = 0

    def install(self, engine: Any) -> None:
        def counted_statement(*_: Any) -> None:
            self.statements += 1

        def counted_connection(*_: Any) -> None:
            self.connections_opened += 1

        event.listen(engine.sync_engine, "before_cursor_execute", counted_statement)
        event.listen(engine.sync_engine, "connect", counted_connection)
        original = aiosqlite.core.Connection._execute
        if getattr(original, "_bench_counted", False):
            return

        async def counted_hop(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.thread_hops += 1
            return await original(conn, fn, *args, **kwargs)

        counted_hop._bench_counted = True  # type: ignore[attr-defined]
        aiosqlite.core.Connection._execute = counted_hop  # type: ignore[method-assign,assignment]

    def snapshot(self) -> dict[str, int]:
        return {
            "statements": self.statements,
            "thread_hops": self.thread_hops,
            "connections_opened": self.connections_opened,
        }


class Instruments:
    def __init__(self) -> None:
        self.lag = LagMonitor()
        self.traffic = TrafficCounter()
        self.database = DatabaseCounter()


def instruments() -> Instruments:
    found: Instruments = current_app.extensions[EXTENSION_KEY]
    return found


@blueprint.get("/status")
@public
async def status() -> Reply:
    """The challenge bound to this session, as a polling page would ask for it."""
    async with services.current().db.session() as db:
        challenge = await challenges.by_public_id(db, session.get(SESSION_KEY))
    if challenge is None:
        return {"status": "none"}, 404
    return {"status": challenge.status}, 200


@blueprint.get("/stats")
@public
async def stats() -> Reply:
    tools = instruments()
    pool: Any = services.current().db.engine.pool
    db_pool = {
        "checked_out": pool.checkedout(),
        "size": pool.size(),
        "overflow": pool.overflow(),
        "limit": pool.size() + max(0, getattr(pool, "_max_overflow", 0)),
    }
    return {
        "pid": os.getpid(),
        "lag": tools.lag.summary(),
        "db_pool": db_pool,
        "database": tools.database.snapshot(),
        **tools.traffic.snapshot(),
    }, 200


@blueprint.post("/reset")
@public
@csrf_exempt(HARNESS_ONLY)
async def reset() -> Reply:
    tools = instruments()
    tools.lag.reset()
    tools.traffic.reset()
    tools.database.reset()
    return {"pid": os.getpid()}, 200


@blueprint.post("/gc/freeze")
@public
@csrf_exempt(HARNESS_ONLY)
async def gc_freeze() -> Reply:
    """What-if: move everything alive now out of the collector's reach."""
    gc.freeze()
    return {"pid": os.getpid(), "frozen": gc.get_freeze_count()}, 200


@blueprint.post("/lag/start")
@public
@csrf_exempt(HARNESS_ONLY)
async def lag_start() -> Reply:
    instruments().lag.start()
    return {"pid": os.getpid()}, 200


@blueprint.post("/lag/stop")
@public
@csrf_exempt(HARNESS_ONLY)
async def lag_stop() -> Reply:
    await instruments().lag.stop()
    return {"pid": os.getpid()}, 200
