"""In production only a decision signed on the phone approves: the development phone page
(whose cookie approves) and the control API (whose key approves) are not there at all.

The attacker here holds everything the old doors asked for: a phone cookie stolen from a
development run on the same database and secret, its CSRF token, and the API key. Every
door answers 404 and the login request stays pending.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import aiohttp

from push2fa.config import load_settings
from push2fa.pushservice import EmulatorSettings, create_emulator_app
from push2fa.web.own_push_service import emulator_settings
from tests.pushservice.conftest import API_KEY, registration_token
from tests.servers import serve_asgi

KEY = {"X-Authy-API-Key": API_KEY}


async def _request_status(http: aiohttp.ClientSession, base: str, uuid: str) -> str:
    async with http.get(f"{base}/onetouch/json/approval_requests/{uuid}", headers=KEY) as resp:
        assert resp.status == 200, await resp.text()
        status: str = (await resp.json())["approval_request"]["status"]
        return status


async def test_production_push_service_has_no_phone_page_and_no_control_api(
    settings: EmulatorSettings,
) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as phone, aiohttp.ClientSession() as api:
        # A development run: a phone enrols on the phone page (its cookie is the phone).
        async with serve_asgi(create_emulator_app(settings)) as dev:
            base = dev + "/_emulator"
            async with phone.get(f"{base}/phone", params={"token": registration_token()}) as r:
                assert r.status == 200
                html = await r.text()
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert csrf, "the development phone page shows no form"
            async with api.post(
                f"{base}/api/devices", json={"token": registration_token("user-2")}, headers=KEY
            ) as r:
                assert r.status == 201
                other: int = (await r.json())["authy_id"]
            devices = [c for c in jar if c.key]
            assert devices, "the phone page set no cookie"
            authy_id = await _enrolled_id(api, base)
            uuid = await _push(api, base, authy_id)
            other_uuid = await _push(api, base, other)

        # The same data and secrets, now in production.
        production = dataclasses.replace(settings, production=True)
        async with serve_asgi(create_emulator_app(production)) as prod:
            base = prod + "/_emulator"
            attacks: list[tuple[str, str, dict[str, Any]]] = [
                ("GET", "/phone", {}),
                (
                    "POST",
                    f"/phone/requests/{uuid}",
                    {"data": {"status": "approved", "csrf_token": csrf.group(1)}},
                ),
                ("POST", "/phone/enrol", {"data": {"token": registration_token("user-3")}}),
                ("POST", f"/phone/accounts/{authy_id}/forget", {"data": {}}),
                ("POST", "/api/devices", {"json": {"token": registration_token("user-4")}}),
                ("GET", f"/api/devices/{other}/requests", {}),
                ("POST", f"/api/requests/{other_uuid}", {"json": {"status": "approved"}}),
                ("GET", f"/api/devices/{other}/totp", {}),
                ("POST", "/api/test-callback", {"json": {}}),
            ]
            for method, path, body in attacks:
                for session, headers in ((phone, {}), (phone, KEY)):
                    async with session.request(
                        method, base + path, headers=headers, **body
                    ) as response:
                        assert response.status == 404, (method, path, response.status)
            # Nothing changed: both requests still wait for a signed decision.
            assert await _request_status(api, base, uuid) == "pending"
            assert await _request_status(api, base, other_uuid) == "pending"
            for user in ("user-3", "user-4"):  # no phone was enrolled through a dead door
                assert (await _registration(api, base, user))["status"] == "pending"


async def _registration(api: aiohttp.ClientSession, base: str, user: str) -> dict[str, Any]:
    async with api.get(
        f"{base}/protected/json/registrations/status",
        params={"custom_user_id": user},
        headers=KEY,
    ) as r:
        assert r.status == 200, await r.text()
        registration: dict[str, Any] = (await r.json())["registration"]
        return registration


async def _enrolled_id(api: aiohttp.ClientSession, base: str) -> int:
    return int((await _registration(api, base, "user-1"))["authy_id"])


async def _push(api: aiohttp.ClientSession, base: str, authy_id: int) -> str:
    async with api.post(
        f"{base}/onetouch/json/users/{authy_id}/approval_requests",
        json={"message": "Log in to push2fa?"},
        headers=KEY,
    ) as r:
        assert r.status == 200, await r.text()
        uuid: str = (await r.json())["approval_request"]["uuid"]
        return uuid


def test_the_app_in_production_runs_its_push_service_in_production(tmp_path) -> None:
    settings = load_settings(
        {},
        {
            "env": "production",
            "secret_key": "s" * 48,
            "public_url": "https://push2fa.example.org",
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
            "push_service": "emulator",
            "instance_path": str(tmp_path),
        },
    )
    assert emulator_settings(settings).production is True
    development = load_settings({}, {"secret_key": "s" * 48, "instance_path": str(tmp_path)})
    assert emulator_settings(development).production is False
