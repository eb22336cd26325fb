"""The processes that serve the ASGI stack (push2fa.web.stack).

`run` is what `push2fa serve` starts: Hypercorn's own worker loop, with one addition
plain `hypercorn push2fa.asgi:app` cannot make. Hypercorn only tells the app about a
shutdown (lifespan) after every connection has finished, and a WebSocket never finishes
by itself, so each worker would hold its sockets for the whole `graceful_timeout` and
then cut them. Here the shutdown signal first drains the app: sockets are asked to
reconnect (to another worker), /readyz turns 503, and in-flight requests complete,
so the worker exits as soon as they have.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from multiprocessing import get_context
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from typing import Any, cast

from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import wrap_app

from push2fa import services
from push2fa.web.stack import ASGIApp, from_environment

log = logging.getLogger("push2fa.server")

# Seconds a stopping supervisor waits beyond graceful_timeout before killing its workers.
WORKER_EXIT_GRACE = 5.0
SHUTDOWN_POLL_SECONDS = 0.1


async def serve_drained(
    stack: ASGIApp,
    svc: services.Services,
    config: Config,
    *,
    sockets: Sockets | None = None,
    shutdown_event: EventType | None = None,
) -> None:
    """Serve `stack` until SIGTERM/SIGINT (or the supervisor's shutdown event), draining
    the app the moment the signal arrives rather than after graceful_timeout."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = None
    if shutdown_event is not None:
        watcher = asyncio.create_task(_watch_shutdown_event(shutdown_event, stop))

    async def drain_then_stop() -> None:
        await stop.wait()
        log.info("stopping: draining, at most %ss for requests", config.graceful_timeout)
        await svc.drain()

    try:
        await worker_serve(
            wrap_app(cast(Any, stack), config.wsgi_max_body_size, "asgi"),
            config,
            sockets=sockets,
            shutdown_trigger=drain_then_stop,
        )
    finally:
        if watcher is not None:
            watcher.cancel()


async def _watch_shutdown_event(event: EventType, stop: asyncio.Event) -> None:
    """A multiprocessing Event has nothing to await; poll it as Hypercorn's workers do."""
    while not event.is_set():
        await asyncio.sleep(SHUTDOWN_POLL_SECONDS)
    stop.set()


class _NotRunningOn(logging.Filter):
    """Drops Hypercorn's "Running on ..." line: every worker would print the same one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Running on")


def serve_worker(
    config: Config,
    sockets: Sockets | None = None,
    shutdown_event: EventType | None = None,
    quiet: bool = False,
) -> None:
    """One worker process: build the app here (settings from the environment, as with
    `hypercorn push2fa.asgi:app`) and serve it on the shared sockets. Only the first
    worker says where it listens (``quiet`` for the others): they share the sockets."""
    if quiet:
        logging.getLogger("hypercorn.error").addFilter(_NotRunningOn())
    application, stack = from_environment()
    asyncio.run(
        serve_drained(
            stack,
            application.extensions["push2fa"],
            config,
            sockets=sockets,
            shutdown_event=shutdown_event,
        )
    )


def run(config: Config) -> int:
    """Serve with `config.workers` processes; 1 serves in this process. Like Hypercorn's
    supervisor: a worker that fails stops them all (the process manager restarts the
    service), one that exits cleanly (e.g. max_requests) is replaced."""
    if config.workers <= 1:
        serve_worker(config)
        return 0
    ctx = get_context("spawn")
    sockets = config.create_sockets()
    shutdown = ctx.Event()

    def spawn(quiet: bool = True) -> BaseProcess:
        process = ctx.Process(
            target=serve_worker,
            kwargs={
                "config": config,
                "sockets": sockets,
                "shutdown_event": shutdown,
                "quiet": quiet,
            },
        )
        process.start()
        return cast(BaseProcess, process)

    def on_signal(*_: object) -> None:
        shutdown.set()

    processes = [spawn(quiet=index > 0) for index in range(config.workers)]
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    exitcode = 0
    deadline: float | None = None
    while processes:
        if shutdown.is_set() and deadline is None:
            deadline = time.monotonic() + config.graceful_timeout + WORKER_EXIT_GRACE
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        # A signal does not interrupt wait(): look at the shutdown flag every second.
        wait([p.sentinel for p in processes], timeout=1.0 if timeout is None else min(1.0, timeout))
        for process in [p for p in processes if p.exitcode is not None]:
            processes.remove(process)
            if shutdown.is_set():
                continue
            if process.exitcode == 0:
                processes.append(spawn())
            else:
                log.error("worker %s exited with %s: stopping", process.pid, process.exitcode)
                exitcode = process.exitcode or 1
                shutdown.set()
        if deadline is not None and time.monotonic() >= deadline:
            for process in processes:
                log.error("worker %s did not stop in time: terminating", process.pid)
                process.terminate()
                process.join()
            processes.clear()
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets):
        sock.close()
    return exitcode
