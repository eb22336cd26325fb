"""The reset request does not tell which addresses have accounts, by its timing either.

Structure (asserted): the request path does the same work for a known and an unknown
address — no database statement at all, and the same background task scheduled with the
same kind of arguments. Timing (measured, printed, not asserted: a timed assertion on a
shared machine would be flaky): the median answer time of each over a live server.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from quart import Quart, has_request_context
from sqlalchemy import event

from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.conftest import csrf_from, get_csrf, register
from tests.servers import reserve_listener, serve_asgi, url_of

ROUNDS = 150


class Recorded:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.scheduled: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []


async def request_path_of(app: Quart, client: Any, address: str, monkeypatch) -> Recorded:
    """What one reset request does before its answer: SQL run and tasks scheduled (held
    back, so that only the request's own work is seen)."""
    recorded = Recorded()
    engine = app.extensions["push2fa"].db.engine.sync_engine

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if has_request_context():  # not the periodic worker's statements
            recorded.statements.append(statement)

    token = await get_csrf(client, "/auth/reset")
    monkeypatch.setattr(app, "add_background_task", lambda f, *a: recorded.scheduled.append((f, a)))
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        response = await client.post("/auth/reset", form={"csrf_token": token, "email": address})
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        monkeypatch.undo()
    assert response.status_code == 302
    return recorded


async def test_known_and_unknown_addresses_do_the_same_work_on_the_request_path(
    app: Quart, client, monkeypatch
):
    await register(client, "alice", email="alice@example.com")

    known = await request_path_of(app, client, "alice@example.com", monkeypatch)
    unknown = await request_path_of(app, client, "nobody@example.com", monkeypatch)

    assert known.statements == unknown.statements == []
    assert [f for f, _ in known.scheduled] == [f for f, _ in unknown.scheduled]
    assert len(known.scheduled) == 1
    (_, known_args), (_, unknown_args) = known.scheduled[0], unknown.scheduled[0]
    assert [type(a) for a in known_args] == [type(a) for a in unknown_args]
    assert known_args[1] == "alice@example.com" and unknown_args[1] == "nobody@example.com"


@pytest.fixture
async def live(overrides: dict[str, Any]) -> Any:
    listener = reserve_listener()
    url = url_of(listener)
    app = create_app(
        {
            **overrides,
            "public_url": url,
            "rate_limits": False,
            "log_level": "WARNING",
            "mail_per_address_per_hour": 100,
        }
    )
    async with serve_asgi(build_asgi(app), listener=listener):
        yield url


async def test_reset_answer_time_for_known_and_unknown_addresses_is_reported(live: str):
    """Benchmark-style: prints the medians and their difference over ROUNDS requests each."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await (await http.get(f"{live}/auth/register")).text()
        password = "correct horse battery"
        await http.post(
            f"{live}/auth/register",
            data={
                "csrf_token": csrf_from(page),
                "username": "alice",
                "email": "alice@example.com",
                "password": password,
                "password2": password,
            },
        )
        token = csrf_from(await (await http.get(f"{live}/auth/reset")).text())
        times: dict[str, list[float]] = {"known": [], "unknown": []}
        for n in range(2 * ROUNDS):
            kind = "known" if n % 2 == 0 else "unknown"
            address = "alice@example.com" if kind == "known" else "nobody@example.com"
            started = time.perf_counter()
            async with http.post(
                f"{live}/auth/reset",
                data={"csrf_token": token, "email": address},
                allow_redirects=False,
            ) as response:
                await response.read()
            times[kind].append((time.perf_counter() - started) * 1000)
            assert response.status == 302

    known, unknown = statistics.median(times["known"]), statistics.median(times["unknown"])
    print(
        f"\nreset request over {ROUNDS} rounds: median known {known:.2f} ms, "
        f"unknown {unknown:.2f} ms, difference {known - unknown:+.2f} ms"
    )
