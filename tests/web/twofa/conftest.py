"""Live push-login fixtures: the app under Hypercorn, the Authy emulator as a SEPARATE
server (as real Authy would be), and browsers made of an aiohttp session (cookies) plus a
python-socketio client over websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio
from yarl import URL

from push2fa.pushservice import EmulatorSettings, create_emulator_app
from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.conftest import TEST_SECRET, csrf_from
from tests.servers import reserve_listener, serve_asgi, url_of

API_KEY = "live-test-api-key-0123456789abcdef"
APP_NAME = "push2fa-live"
APP_ID = "5a5a5a5a5a5a5a5a5a5a5a5a"
PASSWORD = "correct horse battery"


@dataclass
class Site:
    url: str
    emulator: str  # the emulator's base, e.g. http://127.0.0.1:1234/_emulator
    app: Any
    http: aiohttp.ClientSession = field(default=None)  # type: ignore[assignment]
    push_service: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    async def stop_push_service(self) -> None:
        """Take the push service down while the app stays up: the app's calls to it fail
        to connect from now on (an outage, as the app meets one)."""
        await self.push_service.aclose()

    async def control(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {"X-Authy-API-Key": API_KEY, **kwargs.pop("headers", {})}
        url = f"{self.emulator}/api{path}"
        async with self.http.request(method, url, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def pending_requests(self, authy_id: int) -> list[dict[str, Any]]:
        status, body = await self.control("GET", f"/devices/{authy_id}/requests")
        assert status == 200, body
        requests: list[dict[str, Any]] = body
        return requests

    async def pushes_sent(self, authy_id: int) -> int:
        """Every approval request the push service ever took for the user, whatever became
        of it (pending, answered, withdrawn): what reached the phone."""
        from sqlalchemy import func, select

        from push2fa.pushservice.tables import requests

        async with self.app.extensions["push2fa"].db.session() as db:
            query = select(func.count()).where(requests.c.authy_id == authy_id)
            return int((await db.execute(query)).scalar_one())

    async def wait_for_request(self, authy_id: int, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            requests = await self.pending_requests(authy_id)
            if requests:
                return requests[-1]
            await asyncio.sleep(0.05)
        raise AssertionError("no approval request reached the emulator")

    async def decide(self, uuid: str, status: str, code: str | None = None) -> dict[str, Any]:
        """Answer on the phone; `code` is the number picked (number matching)."""
        payload: dict[str, Any] = {"status": status}
        if code is not None:
            payload["code"] = code
        http_status, body = await self.control("POST", f"/requests/{uuid}", json=payload)
        assert http_status == 200, body
        decided: dict[str, Any] = body
        return decided


class Browser:
    """One browser: a cookie jar for pages and, when asked, a live socket."""

    def __init__(self, site: Site, user_agent: str | None = None) -> None:
        self.site = site
        headers = {"User-Agent": user_agent} if user_agent else None
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers
        )
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.sockets: list[socketio.AsyncClient] = []
        self.last_html = ""

    async def close(self) -> None:
        for sock in self.sockets:
            await sock.disconnect()
        await self.http.close()

    async def get(self, path: str) -> aiohttp.ClientResponse:
        resp = await self.http.get(self.site.url + path)
        self.last_html = await resp.text()
        return resp

    async def post_form(
        self, path: str, data: dict[str, str], page: str | None = None
    ) -> aiohttp.ClientResponse:
        """Submit a form the way a browser does: fetch the page for its CSRF token first."""
        if page is not None:
            await self.get(page)
        form = {"csrf_token": csrf_from(self.last_html), **data}
        resp = await self.http.post(self.site.url + path, data=form)
        self.last_html = await resp.text()
        return resp

    def match_code(self) -> str | None:
        """The number the waiting page asks to pick on the phone, as a person reads it."""
        found = re.search(r'id="match-code"[^>]*>(\d+)<', self.last_html)
        return found.group(1) if found else None

    def cookie_header(self) -> str:
        cookies = self.http.cookie_jar.filter_cookies(URL(self.site.url))
        return "; ".join(f"{k}={m.value}" for k, m in cookies.items())

    async def connect(self) -> socketio.AsyncClient:
        sock = socketio.AsyncClient(reconnection=False)
        for event in ("challenge", "enrollment"):
            sock.on(event, self._recorder(event))
        await sock.connect(
            self.site.url, headers={"Cookie": self.cookie_header()}, transports=["websocket"]
        )
        self.sockets.append(sock)
        return sock

    def _recorder(self, event: str):
        async def record(data: dict[str, Any]) -> None:
            await self.events.put((event, data))

        return record

    async def next_event(self, name: str, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            event, data = await asyncio.wait_for(self.events.get(), timeout)
            if event == name:
                return data

    async def wait_status(self, name: str, status: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            data = await self.next_event(name, max(0.01, deadline - time.monotonic()))
            if data.get("status") == status:
                return data

    # --- the steps a person takes -------------------------------------------------------

    async def register(self, username: str) -> None:
        resp = await self.post_form(
            "/auth/register",
            {
                "username": username,
                "email": f"{username}@example.com",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
            page="/auth/register",
        )
        assert resp.status == 200 and "Please log in" in self.last_html, self.last_html[:500]

    async def login(self, username: str, **extra: str) -> aiohttp.ClientResponse:
        return await self.post_form(
            "/auth/login", {"login": username, "password": PASSWORD, **extra}, page="/auth/login"
        )

    async def logout(self) -> None:
        await self.post_form("/auth/logout", {}, page="/")

    async def enable_push(self) -> int:
        """Turn on push 2FA by 'scanning' the QR token with the emulator; return authy_id."""
        await self.post_form("/auth/2fa/enable", {}, page="/auth/2fa/enable")
        match = re.search(r"phone\?token=([A-Za-z0-9_\-.]+)", self.last_html)
        assert match, "enrolment page shows no emulator link"
        await self.connect()
        code, body = await self.site.control("POST", "/devices", json={"token": match.group(1)})
        assert code == 201, body
        await self.wait_status("enrollment", "completed")
        return int(body["authy_id"])


@pytest.fixture
def site_options() -> dict[str, Any]:
    """Changes to the live site's settings; a test module overrides this fixture."""
    return {}


@pytest.fixture
async def site(tmp_path, database_url, site_options) -> AsyncIterator[Site]:
    options = dict(site_options)
    callback_method = options.pop("emulator_callback_method", "POST")
    callback_url = options.pop("emulator_callback_url", None)
    app_listener, emu_listener = reserve_listener(), reserve_listener()
    app_url, emu_url = url_of(app_listener), url_of(emu_listener)
    emulator = create_emulator_app(
        EmulatorSettings(
            api_key=API_KEY,
            app_name=APP_NAME,
            app_id=APP_ID,
            callback_url=callback_url or f"{app_url}/webhooks/authy",
            callback_method=callback_method,
            database_url=database_url,  # the push service shares the app's database
        )
    )
    app = create_app(
        {
            "testing": True,
            "secret_key": TEST_SECRET,
            "instance_path": str(tmp_path / "instance"),
            "database_url": database_url,
            "bcrypt_rounds": 4,
            "public_url": app_url,
            "push_service": "emulator",
            "emulator_url": f"{emu_url}/_emulator",
            "authy_api_key": API_KEY,
            "authy_app_name": APP_NAME,
            "authy_app_id": APP_ID,
            # The safety-net poll waits long here, so these tests prove the webhook path.
            "status_poll_delay": 30.0,
            **options,
        }
    )
    async with contextlib.AsyncExitStack() as push_service:
        await push_service.enter_async_context(serve_asgi(emulator, listener=emu_listener))
        async with (
            serve_asgi(build_asgi(app), listener=app_listener),
            aiohttp.ClientSession() as http,
        ):
            yield Site(
                url=app_url,
                emulator=f"{emu_url}/_emulator",
                app=app,
                http=http,
                push_service=push_service,
            )


@pytest.fixture
async def browsers(site) -> AsyncIterator[Any]:
    opened: list[Browser] = []

    def open_browser(user_agent: str | None = None) -> Browser:
        browser = Browser(site, user_agent)
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        await browser.close()


@pytest.fixture
async def enrolled(site, browsers) -> tuple[Browser, int]:
    """A user 'alice' with push 2FA on, logged out, and her authy_id."""
    browser = browsers()
    await browser.register("alice")
    await browser.login("alice")
    authy_id = await browser.enable_push()
    await browser.logout()
    return browser, authy_id
