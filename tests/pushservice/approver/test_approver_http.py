"""The Approver over plain HTTP: installability, its API's refusals, and Web Push delivery."""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from push2fa.db import Database
from push2fa.pushservice.approver.store import ApproverStore
from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.conftest import TEST_SECRET
from tests.pushservice.approver.conftest import ApproverSite, localhost
from tests.pushservice.approver.fake_push import fake_push_service
from tests.pushservice.conftest import registration_token
from tests.servers import reserve_listener, serve_asgi, url_of

JSON = {"Content-Type": "application/json"}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_the_manifest_makes_the_approver_installable(approver_site: ApproverSite) -> None:
    http = approver_site.http
    async with http.get(f"{approver_site.app_url}manifest.webmanifest") as response:
        assert response.status == 200
        assert response.content_type == "application/manifest+json"
        manifest = await response.json(content_type=None)
    assert manifest["display"] == "standalone"
    assert manifest["name"] and manifest["start_url"] == "/_emulator/approver/"
    assert manifest["scope"] == "/_emulator/approver/"
    sizes = set()
    for icon in manifest["icons"]:
        async with http.get(approver_site.url + icon["src"]) as response:
            assert response.status == 200
            width, height = png_size(await response.read())
        assert icon["sizes"] == f"{width}x{height}"
        sizes.add(width)
    assert {192, 512} <= sizes
    async with http.get(f"{approver_site.app_url}sw.js") as response:
        assert response.status == 200
        assert response.content_type == "text/javascript"
        assert "showNotification" in await response.text()
    async with http.get(f"{approver_site.app_url}offline") as response:
        assert response.status == 200
    async with http.get(approver_site.app_url) as response:
        page = await response.text()
        assert 'rel="manifest"' in page
        assert "<script>" not in page  # no inline script: the CSP stays script-src 'self'


async def post(site: ApproverSite, path: str, body: Any, **headers: str) -> tuple[int, Any]:
    async with site.http.post(
        f"{site.app_url}api/{path}", json=body, headers={**JSON, **headers}
    ) as response:
        return response.status, await response.json(content_type=None)


async def test_enrolment_with_a_bad_token_is_refused_and_adds_nobody(
    approver_site: ApproverSite,
) -> None:
    expired = registration_token("mallory", exp=1)
    forged = registration_token("mallory", key="not-the-api-key-0123456789abcdef")
    for token in ("", "nonsense", expired, forged, 42, None):
        status, body = await post(approver_site, "enrol/options", {"token": token})
        assert status == 400, body
        assert "Could not add the account" in body["error"] or "not valid" in body["error"]
    status, body = await post(
        approver_site,
        "enrol",
        {"ceremony": "x", "token": registration_token("mallory"), "credential": {}},
    )
    assert status == 409  # no such ceremony: nothing was enrolled
    async with approver_site.http.get(
        f"{approver_site.url}/_emulator/protected/json/registrations/status",
        params={"custom_user_id": "mallory"},
        headers={"X-Authy-API-Key": "test-api-key-0123456789abcdefABCDEF"},
    ) as response:
        assert (await response.json())["registration"]["status"] == "pending"


async def test_a_cross_site_page_cannot_call_the_api(approver_site: ApproverSite) -> None:
    status, _ = await post(
        approver_site,
        "enrol/options",
        {"token": registration_token()},
        Origin="https://evil.example",
    )
    assert status == 403
    async with approver_site.http.post(
        f"{approver_site.app_url}api/enrol/options",
        data={"token": registration_token()},  # what a cross-site <form> can send
    ) as response:
        assert response.status == 415


async def test_an_enrolment_ceremony_is_spent_once_even_with_a_bogus_credential(
    approver_site: ApproverSite,
) -> None:
    token = registration_token("alice")
    status, options = await post(approver_site, "enrol/options", {"token": token})
    assert status == 200
    assert options["publicKey"]["authenticatorSelection"]["userVerification"] == "required"
    assert options["publicKey"]["rp"]["id"] == "localhost"
    body = {"ceremony": options["ceremony"], "token": token, "credential": {"id": "AAAA"}}
    status, answer = await post(approver_site, "enrol", body)
    assert status == 400 and "could not be verified" in answer["error"]
    status, _ = await post(approver_site, "enrol", body)
    assert status == 409


@pytest.mark.parametrize(
    "body",
    [
        {"credential": "unknown-credential"},
        {"credential": 5},
        {"credential": "x" * 5000},
        {},
    ],
)
async def test_a_decision_needs_an_enrolled_passkey(
    approver_site: ApproverSite, body: dict[str, Any]
) -> None:
    status, answer = await post(approver_site, "requests/some-uuid/options", body)
    assert status in (400, 403), answer


@pytest.mark.parametrize(
    "body",
    [
        {"ceremony": "nope", "decision": "approve", "number": "42", "assertion": {}},
        {"ceremony": "nope", "decision": "steal", "assertion": {}},
        {"ceremony": "nope", "decision": "approve", "number": "4 2", "assertion": {}},
        {"ceremony": ["x"], "decision": "deny", "assertion": "garbage"},
    ],
)
async def test_a_forged_decision_is_refused_without_a_server_error(
    approver_site: ApproverSite, body: dict[str, Any]
) -> None:
    status, answer = await post(approver_site, "requests/some-uuid/decision", body)
    assert 400 <= status < 500, answer


async def test_pending_requests_need_the_phone_cookie(approver_site: ApproverSite) -> None:
    async with approver_site.http.get(f"{approver_site.app_url}api/requests") as response:
        assert response.status == 200
        assert (await response.json())["requests"] == []


async def enrolled_account(site: ApproverSite, account: str) -> int:
    async with site.http.post(
        f"{site.url}/_emulator/api/devices", json={"token": registration_token(account)}
    ) as response:
        assert response.status == 201, await response.text()
        authy_id: int = (await response.json())["authy_id"]
        return authy_id


async def test_a_new_request_wakes_every_subscribed_phone_and_cleans_up_dead_ones(
    approver_site: ApproverSite,
) -> None:
    authy_id = await enrolled_account(approver_site, "alice")
    db = Database(approver_site.approver.database_url)
    store = ApproverStore(db)
    now = datetime.now(UTC)
    try:
        async with fake_push_service() as push_service:
            phones = {
                status: push_service.new_phone(answer=status, **extra)
                for status, extra in ((201, {}), (410, {}), (429, {"Retry-After": "600"}))
            }
            for n, (status, phone) in enumerate(phones.items()):
                credential = await store.add_credential(
                    device_id=0,
                    authy_id=authy_id,
                    credential_id=f"cred-{status}",
                    public_key=b"k",
                    sign_count=0,
                    device_type="single_device",
                    backed_up=False,
                    name=f"phone {n}",
                    now=now,
                )
                keys = phone.subscription()["keys"]
                await store.set_subscription(
                    credential.id, phone.endpoint, keys["p256dh"], keys["auth"], now
                )
            uuid = await approver_site.push(authy_id, ttl=90)
            for _ in range(100):
                if len(await store.subscriptions_for(authy_id)) == 2:
                    break
                await asyncio.sleep(0.05)
            assert push_service.payloads() == [{"v": 1, "request": uuid}]
            [delivered] = push_service.delivered
            assert 0 < int(delivered.headers["TTL"]) <= 90
            assert delivered.headers["Urgency"] == "high"
            assert delivered.vapid_ok
            left = {s.endpoint: s for s in await store.subscriptions_for(authy_id)}
            assert phones[410].endpoint not in left  # gone: dropped
            assert left[phones[429].endpoint].paused_until is not None  # throttled: resting
            attempts = push_service.attempts
            await approver_site.push(authy_id, ttl=90)
            await asyncio.sleep(0.5)
            assert push_service.attempts == attempts + 1  # only the healthy phone again
    finally:
        await db.dispose()


async def test_the_app_mounts_the_approver_on_localhost_but_not_on_an_ip_address(
    tmp_path: Path, database_url: str
) -> None:
    for host, expected in (("localhost", 200), ("127.0.0.1", 404)):
        listener = reserve_listener()
        url = url_of(listener)
        public = localhost(url) if host == "localhost" else url
        app = create_app(
            {
                "secret_key": TEST_SECRET,
                "instance_path": str(tmp_path / host),
                "database_url": database_url,
                "bcrypt_rounds": 4,
                "public_url": public,
            }
        )
        async with (
            serve_asgi(build_asgi(app), listener=listener),
            aiohttp.ClientSession() as http,
            http.get(f"{url}/_emulator/approver/manifest.webmanifest") as response,
        ):
            assert response.status == expected
    assert (tmp_path / "localhost" / "vapid_private_key.pem").is_file()


async def test_without_mail_the_email_way_is_not_offered(approver_site: ApproverSite) -> None:
    async with approver_site.http.get(approver_site.app_url) as response:
        assert "An app registered my e-mail" not in await response.text()
    status, body = await post(approver_site, "email/code", {"email": "ann@example.com"})
    assert status == 503 and "cannot send e-mail" in body["error"]
