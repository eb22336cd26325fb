"""Fixtures for the Approver: Chromium with a CDP virtual authenticator on ``localhost``.

WebAuthn refuses IP-address origins, so pages are opened at ``http://localhost:PORT``
although the servers bind 127.0.0.1. The virtual authenticator is Chromium's own (CDP
``WebAuthn`` domain): the signatures the tests verify are real ones, made by the browser.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from push2fa.pushservice import EmulatorSettings, create_emulator_app
from push2fa.pushservice.approver.service import EXTENSION_KEY, Approver, ApproverSettings
from push2fa.pushservice.approver.webpush import VapidKey
from push2fa.webauthn import RelyingParty
from tests.browser.conftest import (  # noqa: F401  (fixtures re-exported for this folder)
    PageWatch,
    chromium,
    open_page,
    page_watch,
    screenshot,
)
from tests.pushservice.conftest import API_KEY, registration_token
from tests.servers import reserve_listener, serve_asgi, url_of

BLANK_PAGE = "<!doctype html><html><head><title>blank</title></head><body></body></html>"


def localhost(url: str) -> str:
    """The same server by name: WebAuthn refuses 127.0.0.1."""
    return url.replace("://127.0.0.1:", "://localhost:")


class VirtualAuthenticator:
    """One platform authenticator with user verification, driven through CDP."""

    def __init__(self, cdp: Any, authenticator_id: str) -> None:
        self.cdp = cdp
        self.id = authenticator_id

    @classmethod
    async def attach(cls, page: Any, **options: Any) -> VirtualAuthenticator:
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("WebAuthn.enable", {"enableUI": False})
        settings = {
            "protocol": "ctap2",
            "ctap2Version": "ctap2_1",
            "transport": "internal",
            "hasResidentKey": True,
            "hasUserVerification": True,
            "isUserVerified": True,
            "automaticPresenceSimulation": True,
            **options,
        }
        added = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": settings})
        return cls(cdp, added["authenticatorId"])

    async def set_user_verified(self, verified: bool) -> None:
        await self.cdp.send(
            "WebAuthn.setUserVerified",
            {"authenticatorId": self.id, "isUserVerified": verified},
        )

    async def override(self, **bits: bool) -> None:
        """e.g. ``isBogusSignature=True``, ``isBadUV=True``."""
        await self.cdp.send(
            "WebAuthn.setResponseOverrideBits", {"authenticatorId": self.id, **bits}
        )

    async def credentials(self) -> list[dict[str, Any]]:
        found = await self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        result: list[dict[str, Any]] = found["credentials"]
        return result


@pytest.fixture
async def blank_origin() -> AsyncIterator[str]:
    """A page on ``http://localhost:PORT`` for WebAuthn ceremonies outside the app."""

    async def blank(_: web.Request) -> web.Response:
        return web.Response(text=BLANK_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", blank)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://localhost:{sock.getsockname()[1]}"
    finally:
        await runner.cleanup()


CREATE_JS = """
async (options) => {
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
  const credential = await navigator.credentials.create({ publicKey });
  return credential.toJSON();
}
"""

GET_JS = """
async (options) => {
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
  try {
    const credential = await navigator.credentials.get({ publicKey });
    return credential.toJSON();
  } catch (error) {
    return { error: error.name };
  }
}
"""


# --- a live push service with the Approver ---------------------------------------------


@dataclass
class ApproverSite:
    """The push service with the Approver, served by Hypercorn; ``url`` is on localhost."""

    url: str
    settings: EmulatorSettings
    approver: ApproverSettings
    http: aiohttp.ClientSession
    service: Approver

    @property
    def app_url(self) -> str:
        return f"{self.url}/_emulator/approver/"

    def enrol_url(self, custom_user_id: str = "alice") -> str:
        return f"{self.app_url}#t={registration_token(custom_user_id)}"

    async def authy_user(self, custom_user_id: str) -> int:
        """The authy_id the push service knows the account by, once a phone enrolled."""
        async with self.http.get(
            f"{self.url}/_emulator/protected/json/registrations/status",
            params={"custom_user_id": custom_user_id},
            headers={"X-Authy-API-Key": API_KEY},
        ) as response:
            body = await response.json()
        assert "authy_id" in body.get("registration", {}), body
        authy_id: int = body["registration"]["authy_id"]
        return authy_id

    async def push(self, authy_id: int, *, choices: str | None = "17,42,83", ttl: int = 120) -> str:
        """A login request as the app sends it (number matching by default)."""
        body: dict[str, Any] = {
            "message": "Log in to push2fa?",
            "details": {
                "Username": "alice",
                "IP address": "203.0.113.9",
                "Browser": "Firefox on Linux",
            },
            "seconds_to_expire": ttl,
        }
        if choices:
            body["hidden_details"] = {"match_choices": choices, "challenge": "c-1"}
        async with self.http.post(
            f"{self.url}/_emulator/onetouch/json/users/{authy_id}/approval_requests",
            json=body,
            headers={"X-Authy-API-Key": API_KEY},
        ) as response:
            assert response.status == 200, await response.text()
            uuid: str = (await response.json())["approval_request"]["uuid"]
            return uuid

    async def status(self, uuid: str) -> str:
        async with self.http.get(
            f"{self.url}/_emulator/onetouch/json/approval_requests/{uuid}",
            headers={"X-Authy-API-Key": API_KEY},
        ) as response:
            status: str = (await response.json())["approval_request"]["status"]
            return status


@pytest.fixture
def approver_extra() -> dict[str, Any]:
    """More ApproverSettings for the site (a module overrides it, e.g. to send mail)."""
    return {}


@pytest.fixture
async def approver_site(
    settings: EmulatorSettings,
    database_url: str,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    approver_extra: dict[str, Any],
) -> AsyncIterator[ApproverSite]:
    listener = reserve_listener()
    url = localhost(url_of(listener))
    approver = ApproverSettings(
        database_url=database_url,
        rp=RelyingParty(rp_id="localhost", name="push2fa test", origins=(url,)),
        vapid=VapidKey.from_settings(
            "", "mailto:admin@localhost", instance_path=str(tmp_path), production=False
        ),
        allow_insecure_push=True,
        push_timeout=2.0,
        **approver_extra,
    )
    app = create_emulator_app(settings, None, approver)
    service = app.other_asgi_app.extensions[EXTENSION_KEY]  # type: ignore[attr-defined]
    async with serve_asgi(app, listener=listener):
        yield ApproverSite(url, settings, approver, http, service)
