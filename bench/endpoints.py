"""Benchmark-only routes, registered on the harness's own app instance, never in push2fa.

`GET /bench/status` is the polling baseline: what the seed app's waiting page asked every
5 s — the status of the challenge bound to this browser's session — answered from the
same database row the push path reads. The `/bench/stats`, `/bench/reset` and
`/bench/lag/*` routes let the harness read the in-process instruments (event-loop lag,
traffic counts) of the worker that answers.
"""

from __future__ import annotations

import os
from typing import Any

from quart import Blueprint, current_app, session

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


class Instruments:
    def __init__(self) -> None:
        self.lag = LagMonitor()
        self.traffic = TrafficCounter()


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
    }
    return {
        "pid": os.getpid(),
        "lag": tools.lag.summary(),
        "db_pool": db_pool,
        **tools.traffic.snapshot(),
    }, 200


@blueprint.post("/reset")
@public
@csrf_exempt(HARNESS_ONLY)
async def reset() -> Reply:
    tools = instruments()
    tools.lag.reset()
    tools.traffic.reset()
    return {"pid": os.getpid()}, 200


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
