"""Fixtures for the Approver: Chromium with a CDP virtual authenticator on ``localhost``.

WebAuthn refuses IP-address origins, so pages are opened at ``http://localhost:PORT``
although the servers bind 127.0.0.1. The virtual authenticator is Chromium's own (CDP
``WebAuthn`` domain): the signatures the tests verify are real ones, made by the browser.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.browser.conftest import (  # noqa: F401  (fixtures re-exported for this folder)
    PageWatch,
    chromium,
    open_page,
    page_watch,
)

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
