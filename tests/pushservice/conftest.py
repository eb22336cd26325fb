"""Fixtures for the push service: it runs as a real server on a freshly migrated database,
its callbacks hit a real receiver.

``base_url`` serves the whole ASGI app (Socket.IO included) under Hypercorn on a free port;
``receiver`` is a small aiohttp server on another port that records every callback. Tests
talk to both over HTTP with aiohttp, exactly as the app and Authy would. ``http`` sends the
API key header to the control API, as its legitimate users (tests, scripts) do;
``anonymous`` is a client that knows no key, for attacks.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web

from push2fa.pushservice import EmulatorSettings, create_emulator_app
from tests.servers import serve_asgi

API_KEY = "test-api-key-0123456789abcdefABCDEF"
APP_NAME = "push2fa-test"
APP_ID = "424242"
CALLBACK_PATH = "/webhooks/authy"


@dataclass
class Received:
    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A stand-in for the app's webhook that records what it is sent."""

    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def callback_url(self) -> str:
        return self.url + CALLBACK_PATH

    async def next_request(self, timeout: float = 5.0) -> Received:
        await asyncio.wait_for(self.arrived.wait(), timeout)
        return self.requests[-1]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    holder: list[Receiver] = []

    async def record(request: web.Request) -> web.Response:
        rec = holder[0]
        rec.requests.append(
            Received(
                request.method,
                request.path,
                request.rel_url.raw_query_string,
                dict(request.headers),
                await request.read(),
            )
        )
        rec.arrived.set()
        return web.Response(status=rec.status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    holder.append(Receiver(f"http://127.0.0.1:{sock.getsockname()[1]}"))
    try:
        yield holder[0]
    finally:
        await runner.cleanup()


@pytest.fixture
def callback_method() -> str:
    return "POST"


@pytest.fixture
def settings(receiver: Receiver, callback_method: str, database_url: str) -> EmulatorSettings:
    return EmulatorSettings(
        api_key=API_KEY,
        app_name=APP_NAME,
        app_id=APP_ID,
        callback_url=receiver.callback_url,
        database_url=database_url,
        callback_method="GET" if callback_method == "GET" else "POST",
        callback_timeout=2.0,
        secret_key="emulator-test-secret-key-0123456789",
    )


@pytest.fixture
async def base_url(settings: EmulatorSettings) -> AsyncIterator[str]:
    async with serve_asgi(create_emulator_app(settings)) as url:
        yield url + "/_emulator"


async def with_control_key(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Add the API key header to control API calls that do not set one themselves."""
    if "/_emulator/api/" in request.url.path:
        request.headers.setdefault("X-Authy-API-Key", API_KEY)
    return await handler(request)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10), middlewares=(with_control_key,)
    ) as session:
        yield session


@pytest.fixture
async def anonymous() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


@pytest.fixture
def key() -> dict[str, str]:
    return {"X-Authy-API-Key": API_KEY}


def registration_token(custom_user_id: str = "user-1", *, key: str = API_KEY, **claims: Any) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": APP_NAME,
        "iat": now,
        "exp": now + 300,
        # Tokens made in the same second must differ: each one enrols a single phone.
        "jti": secrets.token_hex(8),
        "context": {"custom_user_id": custom_user_id, "authy_app_id": APP_ID},
    }
    payload.update(claims)
    return jwt.encode(payload, key, algorithm="HS256")


@pytest.fixture
def enrol(http: aiohttp.ClientSession, base_url: str) -> Callable[..., Any]:
    """Enrol a device through the control API; returns its authy_id."""

    async def enrol_device(custom_user_id: str = "user-1") -> int:
        async with http.post(
            f"{base_url}/api/devices", json={"token": registration_token(custom_user_id)}
        ) as response:
            assert response.status == 201, await response.text()
            authy_id: int = (await response.json())["authy_id"]
            return authy_id

    return enrol_device


@pytest.fixture
def push(http: aiohttp.ClientSession, base_url: str, key: dict[str, str]) -> Callable[..., Any]:
    """Create an approval request through the Authy API; returns its uuid."""

    async def create(authy_id: int, **params: Any) -> str:
        body = {"message": "Log in to push2fa?", **params}
        async with http.post(
            f"{base_url}/onetouch/json/users/{authy_id}/approval_requests",
            json=body,
            headers=key,
        ) as response:
            assert response.status == 200, await response.text()
            uuid: str = (await response.json())["approval_request"]["uuid"]
            return uuid

    return create
