"""Enrolment tokens, attacked as someone who saw the QR code would: each token enrols one
phone, into the account named inside it, for a few minutes; a used, expired or altered
token is refused with a clear message and changes nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from typing import Any

import aiohttp
import pytest

from .conftest import API_KEY, registration_token


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def scan(phone: aiohttp.ClientSession, base_url: str, token: str) -> tuple[int, str]:
    async with phone.get(f"{base_url}/phone", params={"token": token}) as response:
        return response.status, await response.text()


async def devices_of(http, base_url: str, custom_user_id: str) -> int:
    """How many phones can answer for the account (0 if none registered)."""
    key = {"X-Authy-API-Key": API_KEY}
    async with http.get(
        f"{base_url}/protected/json/registrations/status",
        params={"custom_user_id": custom_user_id},
        headers=key,
    ) as response:
        registration = (await response.json())["registration"]
    if registration["status"] != "completed":
        return 0
    async with http.get(
        f"{base_url}/protected/json/users/{registration['authy_id']}/status", headers=key
    ) as response:
        return len((await response.json())["status"]["devices"])


async def test_a_token_used_once_is_refused_to_a_second_phone(http, base_url) -> None:
    token = registration_token("alice")
    async with browser() as owner, browser() as onlooker:
        assert (await scan(owner, base_url, token))[0] == 200
        status, html = await scan(onlooker, base_url, token)

    assert status == 400
    assert "already been used" in html and "No accounts yet" in html
    assert await devices_of(http, base_url, "alice") == 1


async def test_phones_racing_one_token_leave_exactly_one_winner(http, base_url) -> None:
    token = registration_token("alice")

    async def race() -> int:
        async with http.post(f"{base_url}/api/devices", json={"token": token}) as response:
            status: int = response.status
            return status

    statuses = await asyncio.gather(*(race() for _ in range(10)))

    assert sorted(statuses) == [201] + [400] * 9
    assert await devices_of(http, base_url, "alice") == 1


@pytest.mark.parametrize(
    "claims",
    [
        {"iat": int(time.time()) - 6 * 60, "exp": int(time.time()) + 3600},
        {"iat": int(time.time()) - 120, "exp": int(time.time()) - 1},
        {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 3900},
    ],
    ids=["older-than-the-setting", "past-exp", "from-the-future"],
)
async def test_an_expired_token_is_refused_and_enrols_nothing(http, base_url, claims) -> None:
    async with browser() as phone:
        status, html = await scan(phone, base_url, registration_token("alice", **claims))

    assert status == 400 and "Could not add the account" in html
    assert await devices_of(http, base_url, "alice") == 0


def with_account(token: str, custom_user_id: str) -> str:
    """The token with another account in its payload and the original signature."""
    header, payload, signature = token.split(".")
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["context"]["custom_user_id"] = custom_user_id
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_a_token_cannot_be_turned_into_another_accounts_token(http, base_url) -> None:
    alices = registration_token("alice")
    async with browser() as mallory:
        status, html = await scan(mallory, base_url, with_account(alices, "bob"))
        assert status == 400 and "not valid" in html

    assert await devices_of(http, base_url, "bob") == 0
    assert await devices_of(http, base_url, "alice") == 0
    async with browser() as alice:
        assert (await scan(alice, base_url, alices))[0] == 200, "a refused forgery spends nothing"
    assert await devices_of(http, base_url, "alice") == 1


async def test_a_later_token_never_hands_over_the_first_phones_device(http, base_url) -> None:
    """Whoever gets a newer token of the account gets a device of their own (and it shows
    in the account's device list), never the existing phone's code secret."""
    devices = []
    async with browser() as first, browser() as second:
        for phone in (first, second):
            await scan(phone, base_url, registration_token("alice"))
            async with phone.get(f"{base_url}/phone") as response:
                devices.append(re.findall(r"/accounts/(\d+)/forget", await response.text()))

    assert len(devices[0]) == len(devices[1]) == 1
    assert devices[0] != devices[1]
    assert await devices_of(http, base_url, "alice") == 2
