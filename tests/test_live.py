"""The full ASGI stack under a real Hypercorn server, spoken to over real HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.conftest import csrf_from
from tests.servers import reserve_listener, serve_asgi, url_of

TIMEOUT = aiohttp.ClientTimeout(total=10)
PASSWORD = "correct horse battery"


@pytest.fixture
async def base_url(overrides: dict[str, Any]) -> AsyncIterator[str]:
    """The base URL of the whole served stack (Socket.IO, emulator, app) on a free port."""
    listener = reserve_listener()
    overrides["public_url"] = url_of(listener)
    async with serve_asgi(build_asgi(create_app(overrides)), listener=listener) as url:
        assert url == overrides["public_url"]
        yield url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        yield session


async def test_healthz_over_http(base_url: str, http: aiohttp.ClientSession):
    async with http.get(f"{base_url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_readyz_over_http(base_url: str, http: aiohttp.ClientSession):
    async with http.get(f"{base_url}/readyz") as response:
        assert response.status == 200
        assert (await response.json())["checks"]["database"] is True


async def test_login_page_over_http(base_url: str, http: aiohttp.ClientSession):
    async with http.get(f"{base_url}/auth/login") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        page = await response.text()
    assert '<form method="post" action="/auth/login"' in page
    assert csrf_from(page)
    assert "push2fa_session" in {cookie.key for cookie in http.cookie_jar}


async def test_register_log_in_and_out_over_http(base_url: str, http: aiohttp.ClientSession):
    async def form_post(path: str, **fields: str) -> aiohttp.ClientResponse:
        async with http.get(f"{base_url}{path}") as page:
            token = csrf_from(await page.text())
        async with http.post(
            f"{base_url}{path}", data={"csrf_token": token, **fields}, allow_redirects=False
        ) as response:
            await response.read()
            return response

    registered = await form_post(
        "/auth/register",
        username="alice",
        email="alice@example.com",
        password=PASSWORD,
        password2=PASSWORD,
    )
    assert (registered.status, registered.headers["Location"]) == (302, "/auth/login")

    logged_in = await form_post("/auth/login", login="alice", password=PASSWORD)
    assert (logged_in.status, logged_in.headers["Location"]) == (302, "/")
    async with http.get(f"{base_url}/") as home:
        page = await home.text()
    assert "Hello, alice!" in page

    token = csrf_from(page)  # the navbar's Log out form
    async with http.post(
        f"{base_url}/auth/logout", data={"csrf_token": token}, allow_redirects=False
    ) as response:
        assert response.status == 302
    async with http.get(f"{base_url}/") as home:
        assert "Hello, alice!" not in await home.text()


async def test_404_over_http_is_an_html_page(base_url: str, http: aiohttp.ClientSession):
    async with http.get(f"{base_url}/no/such/page") as response:
        assert response.status == 404
        assert response.content_type == "text/html"
        assert re.search(r"<h1[^>]*>Page not found</h1>", await response.text())


async def test_oversized_body_over_http_is_413(base_url: str, http: aiohttp.ClientSession):
    async with http.post(
        f"{base_url}/auth/login",
        data=b"x" * (300 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        assert response.status == 413
