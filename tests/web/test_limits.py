"""Rate-limit keys: the per-account limit on password guesses counts the account however its
name is typed, so a guesser cannot get a fresh allowance by changing case or padding."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from push2fa.web.app import create_app
from tests import services
from tests.conftest import get_csrf, register


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return {**overrides, "rate_limits": True}


async def _guess(client, login: str) -> int:
    token = await get_csrf(client, "/auth/login")
    response = await client.post(
        "/auth/login", form={"csrf_token": token, "login": login, "password": "wrong guess"}
    )
    status: int = response.status_code
    return status


async def test_case_changed_logins_share_the_per_account_limit(app, client):
    await register(client, "alice")
    spellings = ["alice", "ALICE", "Alice", " alice ", "aLiCe", "ALICE ", "alicE", "AlIcE"]
    statuses = [await _guess(client, spellings[i % len(spellings)]) for i in range(12)]
    assert 429 not in statuses[:10], statuses
    assert statuses[10:] == [429, 429], statuses


async def test_another_account_keeps_its_own_allowance(app, client):
    await register(client, "alice")
    await register(app.test_client(), "bob")
    for _ in range(10):
        await _guess(client, "alice")
    assert await _guess(client, "ALICE") == 429
    assert await _guess(client, "bob") != 429


async def test_case_changed_guesses_at_an_unknown_account_share_one_limit(app, client):
    spellings = ["ghost", "GHOST", "Ghost", " ghost", "gHoSt"]
    statuses = [await _guess(client, spellings[i % len(spellings)]) for i in range(12)]
    assert 429 not in statuses[:10], statuses
    assert statuses[10:] == [429, 429], statuses


async def _ask_reset(client, email: str) -> int:
    token = await get_csrf(client, "/auth/reset")
    response = await client.post("/auth/reset", form={"csrf_token": token, "email": email})
    status: int = response.status_code
    return status


async def test_reset_requests_count_per_address_whatever_the_case(app, client):
    """The reset form's per-address limit (3 a minute) counts the address however it is
    typed, and only that address: asking for one account's link never uses up another's."""
    spellings = ["alice@example.com", "ALICE@example.com", " Alice@Example.COM "]
    statuses = [await _ask_reset(client, email) for email in spellings]
    assert 429 not in statuses, statuses
    assert await _ask_reset(client, "alice@EXAMPLE.com") == 429
    assert await _ask_reset(client, "bob@example.com") != 429


async def test_username_and_email_of_one_account_share_the_per_account_limit(app, client):
    """Both name the account: switching between them gives a guesser no fresh allowance."""
    await register(client, "alice")
    names = ["alice", "alice@example.com", "ALICE@EXAMPLE.COM", "Alice"]
    statuses = [await _guess(client, names[i % len(names)]) for i in range(11)]
    assert 429 not in statuses[:10], statuses
    assert statuses[10] == 429, statuses


@pytest.mark.parametrize("login", ["alice\x00", "al\x00ice", "\x07alice", "alice\x1b"])
async def test_a_login_with_control_characters_is_refused_plainly_and_still_counted(
    app, client, login: str
):
    """No account name holds a control character (PostgreSQL refuses NUL in a query):
    such a login gets the form's error (400) and counts like any other, never a 500."""
    await register(client, "alice")
    statuses = [await _guess(client, login) for _ in range(11)]
    assert set(statuses[:10]) == {400}, statuses
    assert statuses[10] == 429, statuses


async def _register_from(app, address: str) -> int:
    client = app.test_client()
    token = await get_csrf(client, "/auth/register")
    response = await client.post(
        "/auth/register",
        form={"csrf_token": token, "username": "x"},
        scope_base={"client": (address, 40000)},
    )
    status: int = response.status_code
    return status


async def test_each_client_address_has_its_own_per_ip_allowance(app):
    """The per-IP limit (registration: 10 posts a minute) counts each address apart: one
    busy or hostile address never uses up everybody else's allowance."""
    statuses = [await _register_from(app, "203.0.113.7") for _ in range(11)]
    assert 429 not in statuses[:10], statuses
    assert statuses[10] == 429, statuses
    assert await _register_from(app, "198.51.100.9") != 429


async def test_page_views_do_not_use_up_the_allowance_for_submissions(app, client):
    """The limits count form submissions: a visitor who reloads the login page (or a
    register page, 10 posts a minute) many times can still log in."""
    await register(client, "alice")
    visitor = app.test_client()
    views = [(await visitor.get("/auth/login")).status_code for _ in range(35)]
    views += [(await visitor.get("/auth/register")).status_code for _ in range(12)]
    views += [(await visitor.head("/auth/register")).status_code for _ in range(12)]
    views += [(await visitor.options("/auth/register")).status_code for _ in range(12)]
    assert set(views) == {200}, views
    assert await _guess(visitor, "alice") != 429
    token = await get_csrf(visitor, "/auth/register")
    registered = await visitor.post("/auth/register", form={"csrf_token": token, "username": "x"})
    assert registered.status_code != 429


async def test_a_clients_own_forwarded_for_header_gives_it_no_fresh_allowance(app):
    """With no trusted proxy, X-Forwarded-For is the client's own words: rotating it must
    not make each request count as another address (the limiter's default key reads it)."""
    client = app.test_client()
    token = await get_csrf(client, "/auth/register")
    statuses = []
    for n in range(11):
        response = await client.post(
            "/auth/register",
            form={"csrf_token": token, "username": "x"},
            headers={"X-Forwarded-For": f"203.0.113.{n + 1}"},
        )
        statuses.append(response.status_code)
    assert 429 not in statuses[:10], statuses
    assert statuses[10] == 429, statuses


async def test_an_operator_can_turn_the_limits_off(overrides: dict[str, Any]):
    """PUSH2FA_RATE_LIMITS=0 (a load test, say) turns every limit off."""
    app = create_app({**overrides, "rate_limits": False})
    async with app.test_app():
        statuses = [await _register_from(app, "203.0.113.7") for _ in range(12)]
    assert 429 not in statuses, statuses


async def test_workers_sharing_one_redis_share_the_counters(overrides: dict[str, Any]):
    """Behind PUSH2FA_REDIS_URL every worker counts into the same allowance: a client
    spreading its posts over workers gets no more than from one."""
    url = await services.redis_url()
    first = create_app({**overrides, "redis_url": url})
    second = create_app({**overrides, "redis_url": url})
    address = f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(256)}"  # fresh per run
    async with first.test_app(), second.test_app():
        statuses = [await _register_from(first, address) for _ in range(10)]
        statuses.append(await _register_from(second, address))
    assert 429 not in statuses[:10], statuses
    assert statuses[10] == 429, statuses
