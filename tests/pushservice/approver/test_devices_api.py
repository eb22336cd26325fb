"""The push2fa device extensions of the push service (the security page's data): list an
account's phones, send one a test push, remove one at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from push2fa.db import Database
from push2fa.pushservice.approver.store import ApproverStore
from tests.pushservice.approver.conftest import ApproverSite
from tests.pushservice.approver.fake_push import fake_push_service
from tests.pushservice.approver.test_approver_http import enrolled_account
from tests.pushservice.conftest import API_KEY

KEY = {"X-Authy-API-Key": API_KEY}


async def call(site: ApproverSite, method: str, path: str) -> tuple[int, Any]:
    url = f"{site.url}/_emulator/protected/json{path}"
    kwargs: dict[str, Any] = {"json": {}} if method == "POST" else {}
    async with site.http.request(method, url, headers=KEY, **kwargs) as response:
        return response.status, await response.json()


async def test_list_test_push_and_remove_a_phone_with_a_passkey(
    approver_site: ApproverSite,
) -> None:
    authy_id = await enrolled_account(approver_site, "alice")
    status, body = await call(approver_site, "GET", f"/users/{authy_id}/devices")
    assert status == 200
    [device] = body["devices"]
    db = Database(approver_site.approver.database_url)
    store = ApproverStore(db)
    now = datetime.now(UTC)
    try:
        async with fake_push_service() as push_service:
            phone = push_service.new_phone(answer=201)
            credential = await store.add_credential(
                device_id=device["id"],
                authy_id=authy_id,
                credential_id="cred-alice",
                public_key=b"k",
                sign_count=0,
                device_type="single_device",
                backed_up=False,
                name="Pixel 8",
                now=now,
            )
            keys = phone.subscription()["keys"]
            await store.set_subscription(
                credential.id, phone.endpoint, keys["p256dh"], keys["auth"], now
            )
            status, body = await call(approver_site, "GET", f"/users/{authy_id}/devices")
            [listed] = body["devices"]
            assert listed["name"] == "Pixel 8" and listed["kind"] == "device-bound"
            assert listed["last_push_delivered_at"] is None

            path = f"/users/{authy_id}/devices/{device['id']}/test_push"
            status, body = await call(approver_site, "POST", path)
            assert (status, body["push"]) == (200, "delivered")
            assert push_service.payloads() == [{"v": 1, "request": ""}]  # no request in it
            status, body = await call(approver_site, "GET", f"/users/{authy_id}/devices")
            assert body["devices"][0]["last_push_delivered_at"] is not None

            uuid = await approver_site.push(authy_id)
            path = f"/users/{authy_id}/devices/{device['id']}/remove"
            status, body = await call(approver_site, "POST", path)
            assert status == 200, body
            # At once: the passkey is revoked, the subscription dropped, the request gone.
            revoked = await store.credential(credential.id)
            assert revoked is not None and not revoked.active
            assert await store.subscriptions_for(authy_id) == []
            assert await approver_site.status(uuid) != "pending"
            status, body = await call(approver_site, "GET", f"/users/{authy_id}/devices")
            assert body["devices"] == []
            status, body = await call(approver_site, "POST", path)
            assert status == 404  # removing twice changes nothing
    finally:
        await db.dispose()


async def test_another_users_device_is_not_found(approver_site: ApproverSite) -> None:
    alice = await enrolled_account(approver_site, "alice")
    mallory = await enrolled_account(approver_site, "mallory")
    _, body = await call(approver_site, "GET", f"/users/{alice}/devices")
    [alices] = body["devices"]
    for action in ("remove", "test_push"):
        status, _ = await call(
            approver_site, "POST", f"/users/{mallory}/devices/{alices['id']}/{action}"
        )
        assert status == 404
    _, body = await call(approver_site, "GET", f"/users/{alice}/devices")
    assert [d["id"] for d in body["devices"]] == [alices["id"]]


async def test_the_device_routes_need_the_api_key(approver_site: ApproverSite) -> None:
    alice = await enrolled_account(approver_site, "alice")
    async with approver_site.http.get(
        f"{approver_site.url}/_emulator/protected/json/users/{alice}/devices"
    ) as response:
        assert response.status == 401
