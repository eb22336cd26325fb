"""Requests the app no longer wants leave the phone at once, end to end: the app under
Hypercorn, push2fa's push service as its own server, a phone page session (cookie plus its
Socket.IO) and a laptop browser. Cancelled on the laptop, or answered there with an app
code, the push disappears from the phone live and can no longer be approved there."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio
from sqlalchemy import select
from yarl import URL

from push2fa.models import LoginChallenge
from tests.web.twofa.conftest import Browser, browsers, site, site_options  # noqa: F401

pytestmark = pytest.mark.usefixtures("site")


class Phone:
    """The phone page as a phone's browser holds it: a cookie jar and a live socket."""

    def __init__(self, emulator: str) -> None:
        self.emulator = emulator  # http://host:port/_emulator
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.socket = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        for name in ("new_request", "request_withdrawn", "request_decided", "request_expired"):
            self.socket.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(data: dict[str, Any]) -> None:
            await self.events.put((name, data))

        return record

    async def scan(self, token: str) -> None:
        async with self.http.get(f"{self.emulator}/phone", params={"token": token}) as response:
            assert response.status == 200, await response.text()

    async def go_live(self) -> None:
        cookies = self.http.cookie_jar.filter_cookies(URL(f"{self.emulator}/phone"))
        header = "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())
        origin = str(URL(self.emulator).origin())
        await self.socket.connect(
            origin,
            socketio_path="/_emulator/socket.io",
            headers={"Cookie": header},
            transports=["websocket"],
        )

    async def next_event(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            event, data = await asyncio.wait_for(self.events.get(), timeout)
            if event == name:
                return data

    async def listed(self) -> list[str]:
        state = await self.socket.call("sync", {}, timeout=5)
        return [request["uuid"] for request in state["requests"]]

    async def code(self) -> str:
        async with self.http.get(f"{self.emulator}/phone") as response:
            html = await response.text()
        found = re.search(r'totp-code"[^>]*>\s*(\d{7})', html, re.S)
        assert found, "the phone page shows no code"
        return found.group(1)

    async def approve(self, uuid: str) -> int:
        async with self.http.get(f"{self.emulator}/phone") as response:
            html = await response.text()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert csrf
        async with self.http.post(
            f"{self.emulator}/phone/requests/{uuid}",
            data={"status": "approved", "csrf_token": csrf.group(1)},
            headers={"Accept": "application/json"},
        ) as response:
            return response.status

    async def close(self) -> None:
        if self.socket.connected:
            await self.socket.disconnect()
        await self.http.close()


@pytest.fixture
async def phone(site) -> AsyncIterator[Phone]:  # noqa: F811
    held = Phone(site.emulator)
    yield held
    await held.close()


async def enrolled_with_phone(site, laptop: Browser, phone: Phone) -> None:  # noqa: F811
    """alice turns push on by scanning the QR link with the phone page; then logs out."""
    await laptop.register("alice")
    await laptop.login("alice")
    await laptop.post_form("/auth/2fa/enable", {}, page="/auth/2fa/enable")
    token = re.search(r"phone\?token=([A-Za-z0-9_\-.]+)", laptop.last_html)
    assert token, "the enrolment page shows no phone link"
    await laptop.connect()
    await phone.scan(token.group(1))
    await laptop.wait_status("enrollment", "completed")
    await laptop.logout()
    await phone.go_live()


async def challenge_status(site, uuid: str) -> str:  # noqa: F811
    database = site.app.extensions["push2fa"].db
    async with database.session() as db:
        challenge = (
            await db.execute(select(LoginChallenge).where(LoginChallenge.provider_uuid == uuid))
        ).scalar_one()
    return str(challenge.status)


async def test_a_login_cancelled_on_the_laptop_leaves_the_phone_at_once(
    site,  # noqa: F811
    browsers,  # noqa: F811
    phone: Phone,
) -> None:
    laptop = browsers()
    await enrolled_with_phone(site, laptop, phone)
    await laptop.login("alice")
    pushed = await phone.next_event("new_request")
    assert await phone.listed() == [pushed["uuid"]]

    await laptop.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")

    withdrawn = await phone.next_event("request_withdrawn")
    assert withdrawn["uuid"] == pushed["uuid"]
    assert await phone.listed() == []
    assert await phone.approve(pushed["uuid"]) == 409, "a cancelled push cannot be approved"
    assert await challenge_status(site, pushed["uuid"]) == "cancelled"


async def test_a_login_answered_with_an_app_code_leaves_the_phone_at_once(
    site,  # noqa: F811
    browsers,  # noqa: F811
    phone: Phone,
) -> None:
    laptop = browsers()
    await enrolled_with_phone(site, laptop, phone)
    await laptop.login("alice")
    pushed = await phone.next_event("new_request")

    await laptop.post_form("/auth/2fa/totp", {"code": await phone.code()}, page="/auth/2fa/wait")

    assert (await phone.next_event("request_withdrawn"))["uuid"] == pushed["uuid"]
    assert await phone.listed() == []
    assert await phone.approve(pushed["uuid"]) == 409
    assert await challenge_status(site, pushed["uuid"]) == "consumed"
