"""The Socket.IO connect-time check, over a real server: a login cookie gets the user's
room only while its server-side session is live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import socketio
from sqlalchemy import update
from yarl import URL

from push2fa.app import create_app
from push2fa.models import UserSession, utcnow
from push2fa.server import build_asgi
from tests.conftest import csrf_from
from tests.servers import reserve_listener, serve_asgi, url_of

PASSWORD = "correct horse battery"


class Site:
    def __init__(self, url: str, app: Any) -> None:
        self.url, self.app = url, app

    def browser(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def post_form(self, http: aiohttp.ClientSession, path: str, data: dict[str, str]):
        page = await (await http.get(self.url + path)).text()
        form = {"csrf_token": csrf_from(page), **data}
        return await http.post(self.url + path, data=form)

    def cookies(self, http: aiohttp.ClientSession) -> str:
        jar = http.cookie_jar.filter_cookies(URL(self.url))
        return "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items())

    async def connects(self, cookie_header: str) -> bool:
        sock = socketio.AsyncClient(reconnection=False)
        try:
            await sock.connect(
                self.url, headers={"Cookie": cookie_header}, transports=["websocket"]
            )
        except socketio.exceptions.ConnectionError:
            return False
        await sock.disconnect()
        return True


@pytest.fixture
async def site(overrides: dict[str, Any]) -> AsyncIterator[Site]:
    listener = reserve_listener()
    app = create_app({**overrides, "public_url": url_of(listener), "rate_limits": False})
    async with serve_asgi(build_asgi(app), listener=listener) as url:
        yield Site(url, app)


async def logged_in(site: Site) -> aiohttp.ClientSession:
    http = site.browser()
    await site.post_form(
        http,
        "/auth/register",
        {
            "username": "alice",
            "email": "alice@example.com",
            "password": PASSWORD,
            "password2": PASSWORD,
        },
    )
    await site.post_form(http, "/auth/login", {"login": "alice", "password": PASSWORD})
    return http


async def test_cookie_copied_before_logout_cannot_connect_after_logout(site: Site):
    http = await logged_in(site)
    try:
        stolen = site.cookies(http)
        assert await site.connects(stolen)  # the user's room, while the session lives

        page = await (await http.get(site.url + "/")).text()
        await http.post(site.url + "/auth/logout", data={"csrf_token": csrf_from(page)})

        assert not await site.connects(stolen)
    finally:
        await http.close()


async def test_idle_session_cannot_connect(site: Site):
    http = await logged_in(site)
    try:
        stolen = site.cookies(http)
        idle = site.app.extensions["push2fa"].settings.session_idle_minutes
        async with site.app.extensions["push2fa"].db.session() as db:
            await db.execute(
                update(UserSession).values(last_active_at=utcnow() - timedelta(minutes=idle + 1))
            )
            await db.commit()

        assert not await site.connects(stolen)
    finally:
        await http.close()


async def test_login_cookie_with_a_foreign_session_cookie_cannot_connect(site: Site):
    alice = await logged_in(site)
    mallory = site.browser()
    try:
        await site.post_form(
            mallory,
            "/auth/register",
            {
                "username": "mallory",
                "email": "m@example.com",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
        )
        await site.post_form(mallory, "/auth/login", {"login": "mallory", "password": PASSWORD})
        alices = dict(part.split("=", 1) for part in site.cookies(alice).split("; "))
        mallorys = dict(part.split("=", 1) for part in site.cookies(mallory).split("; "))

        mixed = (
            f"push2fa_session={mallorys['push2fa_session']}; push2fa_auth={alices['push2fa_auth']}"
        )

        assert not await site.connects(mixed)
    finally:
        await alice.close()
        await mallory.close()
