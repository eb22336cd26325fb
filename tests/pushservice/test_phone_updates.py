"""Socket.IO for the phone page: the signed cookie decides the rooms; events arrive live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import socketio

from push2fa.pushservice import totp
from push2fa.pushservice.phone_session import COOKIE_NAME

from .conftest import registration_token

SOCKETIO_PATH = "/_emulator/socket.io"


async def phone_cookie(base_url: str, custom_user_id: str = "user-1") -> str:
    """Enrol by the QR link, as a phone browser would, and return the phone cookie."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as browser,
        browser.get(
            f"{base_url}/phone",
            params={"token": registration_token(custom_user_id)},
            allow_redirects=False,
        ) as response,
    ):
        assert response.status == 303
        return f"{COOKIE_NAME}={response.cookies[COOKIE_NAME].value}"


class Phone:
    """A Socket.IO client that records every event it receives."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in ("new_request", "request_decided", "request_expired", "totp"):
            self.client.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Callable[[Any], Any]:
        async def record(data: Any) -> None:
            await self.events.put((name, data))

        return record

    async def next_event(self, name: str, timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                event, data = await self.events.get()
                if event == name:
                    return data


@pytest.fixture
async def connect(base_url: str) -> AsyncIterator[Callable[..., Any]]:
    phones: list[Phone] = []
    root = base_url.removesuffix("/_emulator")

    async def open_phone(headers: dict[str, str], transports: list[str] | None = None) -> Phone:
        phone = Phone()
        phones.append(phone)
        await phone.client.connect(
            root,
            headers=headers,
            socketio_path=SOCKETIO_PATH,
            transports=transports or ["websocket"],
            wait_timeout=5,
        )
        return phone

    yield open_phone
    for phone in phones:
        await phone.client.disconnect()


async def authy_id_of(http, base_url, custom_user_id: str = "user-1") -> int:
    async with http.post(
        f"{base_url}/api/devices", json={"token": registration_token(custom_user_id)}
    ) as response:
        authy_id: int = (await response.json())["authy_id"]
        return authy_id


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
async def test_phone_receives_new_request_live(http, base_url, connect, push, transports) -> None:
    cookie = await phone_cookie(base_url)
    phone = await connect({"Cookie": cookie}, transports)
    authy_id = await authy_id_of(http, base_url)
    uuid = await push(authy_id, details={"IP": "203.0.113.7"}, hidden_details={"s": "x"})
    event = await phone.next_event("new_request")
    assert event["uuid"] == uuid and event["authy_id"] == authy_id
    assert event["message"] == "Log in to push2fa?"
    assert event["details"] == {"IP": "203.0.113.7"}
    assert "hidden_details" not in event
    assert event["expires_at"].endswith("Z")


async def test_phone_hears_decisions_and_expiry(http, base_url, connect, push) -> None:
    phone = await connect({"Cookie": await phone_cookie(base_url)})
    authy_id = await authy_id_of(http, base_url)
    decided = await push(authy_id)
    async with http.post(f"{base_url}/api/requests/{decided}", json={"status": "approved"}):
        pass
    assert await phone.next_event("request_decided") == {"uuid": decided, "status": "approved"}
    expiring = await push(authy_id, seconds_to_expire=1)
    assert await phone.next_event("request_expired", 3) == {"uuid": expiring, "status": "expired"}


async def test_sync_returns_pending_requests_and_codes(http, base_url, connect, push) -> None:
    cookie = await phone_cookie(base_url)
    authy_id = await authy_id_of(http, base_url)
    uuid = await push(authy_id)
    phone = await connect({"Cookie": cookie})
    state = await phone.client.call("sync", None, timeout=5)
    assert [r["uuid"] for r in state["requests"]] == [uuid]
    [code] = state["codes"]
    assert code["authy_id"] == authy_id
    assert len(code["code"]) == 7 and 1 <= code["seconds_left"] <= 30


async def test_other_accounts_requests_do_not_reach_the_phone(
    http, base_url, connect, push
) -> None:
    phone = await connect({"Cookie": await phone_cookie(base_url, "mine")})
    await push(await authy_id_of(http, base_url, "someone-else"))
    mine = await push(await authy_id_of(http, base_url, "mine"))
    assert (await phone.next_event("new_request"))["uuid"] == mine


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Cookie": f"{COOKIE_NAME}=forged.value.sig"},
        {"Cookie": "session=abc; other=1"},
    ],
    ids=["no-cookie", "forged-cookie", "unrelated-cookies"],
)
async def test_connection_without_a_valid_phone_cookie_is_refused(
    base_url, connect, headers
) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(headers)


async def test_phone_without_accounts_is_refused(base_url, connect) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as browser,
        browser.get(f"{base_url}/phone") as response,
    ):
        cookie = f"{COOKIE_NAME}={response.cookies[COOKIE_NAME].value}"
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect({"Cookie": cookie})


async def test_cross_origin_handshake_is_refused(base_url, connect) -> None:
    cookie = await phone_cookie(base_url)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect({"Cookie": cookie, "Origin": "http://evil.example"})
    root = base_url.removesuffix("/_emulator")
    assert await connect({"Cookie": cookie, "Origin": root})


async def test_a_forged_forwarded_host_does_not_make_another_origin_same_origin(
    base_url, connect
) -> None:
    """A client's own X-Forwarded-* headers are not a proxy's: with no trusted proxy they
    cannot turn a foreign page's origin into this one."""
    cookie = await phone_cookie(base_url)
    forged = {
        "Cookie": cookie,
        "Origin": "https://evil.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
    }
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(forged)


@pytest.fixture
def one_second_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set before the server starts (the server runs in this process, in this loop)."""
    monkeypatch.setattr(totp, "STEP_SECONDS", 1)


async def test_codes_are_pushed_at_each_step(one_second_steps, http, base_url, connect) -> None:
    phone = await connect({"Cookie": await phone_cookie(base_url)})
    authy_id = await authy_id_of(http, base_url)
    first = await phone.next_event("totp", 3)
    second = await phone.next_event("totp", 3)
    assert first["authy_id"] == second["authy_id"] == authy_id
    assert len(first["code"]) == 7 and first["seconds_left"] == 1


async def test_new_request_carries_the_choices_to_pick_but_no_other_hidden_details(
    http, base_url, connect, push
) -> None:
    phone = await connect({"Cookie": await phone_cookie(base_url)})
    authy_id = await authy_id_of(http, base_url)
    await push(authy_id, hidden_details={"match_choices": "17,42,83", "challenge": "c-secret"})
    event = await phone.next_event("new_request")
    assert event["choices"] == ["17", "42", "83"]
    assert "hidden_details" not in event and "c-secret" not in str(event)
    state = await phone.client.call("sync", None, timeout=5)
    assert state["requests"][0]["choices"] == ["17", "42", "83"]


async def test_new_request_without_matching_has_no_choices(http, base_url, connect, push) -> None:
    phone = await connect({"Cookie": await phone_cookie(base_url)})
    await push(await authy_id_of(http, base_url), hidden_details={"challenge": "c-secret"})
    event = await phone.next_event("new_request")
    assert event["choices"] == [] and "c-secret" not in str(event)
