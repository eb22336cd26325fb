"""The security history reads as login attempts in human words, paged, flags explained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from quart import Quart

from push2fa.models import AuditEvent
from push2fa.web.account import history
from tests.conftest import login, register
from tests.web.auth.rows import user_named

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"


def row(n: int, event: str, seconds: float = 0, **details: Any) -> AuditEvent:
    return AuditEvent(
        id=n,
        user_id=1,
        event=event,
        ip="203.0.113.5",
        user_agent=CHROME,
        details=details,
        created_at=T0 + timedelta(seconds=seconds),
    )


def push_login(start: int, challenge: str, at: float) -> list[AuditEvent]:
    return [
        row(start, "push.created", at, challenge=challenge, purpose="login"),
        row(start + 1, "push.approved", at + 3, challenge=challenge, by="push"),
        row(start + 2, "push.consumed", at + 3.1, challenge=challenge, by="complete"),
        row(start + 3, "login.succeeded", at + 3.2, second_factor="push"),
    ]


def test_a_push_login_is_one_attempt_in_human_words():
    [attempt] = history.group(push_login(1, "abcd1234", 0))

    assert attempt.headline == "Login approved on your phone"
    assert len(attempt.steps) == 4
    assert attempt.ip == "203.0.113.5"
    assert attempt.flags == []


def test_attempts_are_newest_first_and_a_wrong_password_stands_alone():
    events = [row(1, "login.password_failed", 0), *push_login(2, "abcd1234", 60)]

    attempts = history.group(events)

    assert [a.headline for a in attempts] == [
        "Login approved on your phone",
        "Wrong password typed",
    ]
    assert attempts[1].flags  # explained, not just marked


def test_a_denied_push_is_flagged_with_what_to_do():
    events = [
        row(1, "push.created", 0, challenge="c1", purpose="login"),
        row(2, "push.denied", 5, challenge="c1", by="push"),
    ]

    [attempt] = history.group(events)

    assert attempt.headline == "Login denied on your phone"
    assert any("change it" in flag for flag in attempt.flags)


def test_a_wrong_code_then_a_recovery_code_stay_in_their_attempt():
    events = [
        row(1, "push.created", 0, challenge="c1", purpose="login"),
        row(2, "auth.failure", 10, kind="recovery"),
        row(3, "recovery_code.used", 20),
        row(4, "push.approved", 20.1, challenge="c1", by="recovery"),
        row(5, "push.consumed", 20.2, challenge="c1", by="complete"),
        row(6, "login.succeeded", 20.3, second_factor="recovery"),
    ]

    [attempt] = history.group(events)

    assert attempt.headline == "Logged in with a recovery code"
    assert "Wrong recovery code typed" in [s.text for s in attempt.steps]


def test_unknown_events_still_read_as_words():
    assert history.words(row(1, "something.new_here")) == "Something new here"


@pytest.mark.parametrize(("requested", "shown"), [(None, 1), (-3, 1), (0, 1), (2, 2), (99, 3)])
def test_a_page_out_of_range_shows_the_nearest(requested: int | None, shown: int):
    attempts = history.group([row(n, "password.changed", n * 3600) for n in range(1, 26)])

    page = history.page(attempts, requested)

    assert (page.number, page.pages) == (shown, 3)
    assert len(page.attempts) == (5 if shown == 3 else 10)


async def add_events(app: Quart, user_id: int, count: int) -> None:
    async with app.extensions["push2fa"].db.session() as db:
        for n in range(count):
            db.add(
                AuditEvent(
                    user_id=user_id,
                    event="password.changed",
                    ip="203.0.113.5",
                    user_agent=CHROME,
                    details={},
                    created_at=T0 + timedelta(hours=n),
                )
            )
        await db.commit()


async def test_security_page_pages_through_history(app: Quart, client):
    await register(client, "alice")
    await login(client, "alice")
    alice = await user_named(app, "alice")
    await add_events(app, alice.id, 25)

    first = await (await client.get("/account/security")).get_data(as_text=True)
    second = await (await client.get("/account/security?page=2")).get_data(as_text=True)

    assert "Page 1 of 3" in first and 'rel="next"' in first and 'rel="prev"' not in first
    assert "Page 2 of 3" in second and 'rel="prev"' in second
    assert "Password changed" in second and "Chrome on Linux, 203.0.113.5" in second


@pytest.mark.parametrize(
    "query", ["page=abc", "page=-1", "page=99999999999999999999999", "page=", "page=1e9"]
)
async def test_a_bad_page_number_shows_a_page_not_an_error(client, query: str):
    await register(client, "alice")
    await login(client, "alice")

    response = await client.get(f"/account/security?{query}")

    assert response.status_code == 200
    assert "Recent activity" in await response.get_data(as_text=True)
