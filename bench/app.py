"""The app in its benchmark configuration: push2fa exactly as `push2fa.asgi` builds it,
plus the bench-only blueprint and instruments on this one instance.

Settings come from the environment (PUSH2FA_*, AUTHY_*), as in production, so that every
Hypercorn worker process builds the same app. Two what-if knobs exist for experiments
only, to test a proposed change without editing the app: BENCH_DEFAULT_EXECUTOR_THREADS
sizes the loop's default thread pool (where `asyncio.to_thread` runs bcrypt), and
BENCH_GC_FREEZE=1 moves everything alive after start-up out of the collector's reach
(`gc.freeze()`), so a full collection no longer walks the imported libraries.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.endpoints import EXTENSION_KEY, Instruments, blueprint
from bench.traffic import ASGIApp
from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi


def create_bench_asgi(overrides: Mapping[str, Any] | None = None) -> ASGIApp:
    app = create_app(overrides)
    tools = Instruments()
    app.extensions[EXTENSION_KEY] = tools
    app.register_blueprint(blueprint)
    app.after_serving(tools.lag.stop)
    tools.database.install(app.extensions["push2fa"].db.engine)
    threads = os.environ.get("BENCH_DEFAULT_EXECUTOR_THREADS")
    if threads:

        @app.before_serving
        async def _size_default_executor() -> None:
            pool = ThreadPoolExecutor(int(threads), thread_name_prefix="bench-default")
            asyncio.get_running_loop().set_default_executor(pool)

    thresholds = os.environ.get("BENCH_GC_THRESHOLD")
    if thresholds:
        gc.set_threshold(*(int(t) for t in thresholds.split(",")))

    if os.environ.get("BENCH_GC_FREEZE") == "1":

        @app.before_serving
        async def _freeze_startup_heap() -> None:
            gc.collect()
            gc.freeze()

    return tools.traffic.wrap(build_asgi(app))
