"""Phones survive a restart: enrol with the built-in push service (mounted in the app's
process, as `make run` does), stop the server, start a new one on the same database, log
in: the push arrives on the phone and the phone's app codes still work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.conftest import TEST_SECRET
from tests.servers import reserve_listener, serve_asgi, url_of
from tests.web.twofa.conftest import Browser, Site

from .test_withdrawal_live import Phone, challenge_status, enrolled_with_phone


@asynccontextmanager
async def running(tmp_path: Path, database_url: str) -> AsyncIterator[Site]:
    """One run of `push2fa serve`: the app with its push service in-process."""
    listener = reserve_listener()
    url = url_of(listener)
    app = create_app(
        {
            "testing": True,
            "secret_key": TEST_SECRET,
            "instance_path": str(tmp_path / "instance"),
            "database_url": database_url,
            "bcrypt_rounds": 4,
            "public_url": url,
            "push_service": "emulator",
            "status_poll_delay": 30.0,
        }
    )
    async with serve_asgi(build_asgi(app), listener=listener), aiohttp.ClientSession() as http:
        yield Site(url=url, emulator=f"{url}/_emulator", app=app, http=http)


async def test_an_enrolled_phone_still_gets_pushes_and_codes_after_a_restart(
    tmp_path: Path, database_url: str
) -> None:
    async with running(tmp_path, database_url) as before:
        laptop, phone = Browser(before), Phone(before.emulator)
        try:
            await enrolled_with_phone(before, laptop, phone)
            await phone.socket.disconnect()
        finally:
            await laptop.close()

    async with running(tmp_path, database_url) as after:
        laptop = Browser(after)
        phone.emulator = after.emulator  # same phone, same cookie, the new server
        try:
            await phone.go_live()
            await laptop.login("alice")
            pushed = await phone.next_event("new_request")
            assert await phone.listed() == [pushed["uuid"]]

            code = await phone.code()
            await laptop.post_form("/auth/2fa/totp", {"code": code}, page="/auth/2fa/wait")

            assert await challenge_status(after, pushed["uuid"]) == "consumed"
            response = await laptop.get("/")
            assert response.status == 200 and "Log out" in laptop.last_html
        finally:
            await laptop.close()
            await phone.close()
