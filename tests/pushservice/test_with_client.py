"""End to end: the app's own Authy client works unchanged against the emulator."""

from __future__ import annotations

import pytest

from push2fa.authy.client import AuthyClient
from push2fa.authy.errors import AuthyError

from .conftest import API_KEY


@pytest.fixture
def client(http, base_url) -> AuthyClient:
    return AuthyClient(base_url, API_KEY, http, timeout=5)


async def test_push_flow_through_the_real_client(client, http, base_url, enrol) -> None:
    assert (await client.registration_status("e2e")).status == "pending"
    authy_id = await enrol("e2e")
    registration = await client.registration_status("e2e")
    assert registration.completed and registration.authy_id == authy_id

    uuid = await client.create_approval_request(
        authy_id,
        "Log in?",
        details={"IP": "192.0.2.1"},
        hidden_details={"c": "1"},
        seconds_to_expire=120,
    )
    assert (await client.approval_request_status(uuid)).status == "pending"
    async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": "approved"}):
        pass
    status = await client.approval_request_status(uuid)
    assert status.status == "approved"

    async with http.get(f"{base_url}/api/devices/{authy_id}/totp") as response:
        code = (await response.json())["code"]
    assert await client.verify_token(authy_id, code) is True
    assert await client.verify_token(authy_id, code) is False  # reused


async def test_errors_reach_the_client_with_authy_codes(client) -> None:
    with pytest.raises(AuthyError) as caught:
        await client.approval_request_status("8d031630-d15b-0134-b0a8-0a77bbe8093e")
    assert (caught.value.status, caught.value.error_code) == (404, "60049")
    with pytest.raises(AuthyError) as caught:
        await client.create_approval_request(55, "hi")
    assert caught.value.error_code == "60026"


async def test_client_and_service_agree_on_details_limits(client, enrol) -> None:
    authy_id = await enrol("limits")
    assert await client.create_approval_request(authy_id, "Log in?", details={"k" * 20: "v"})
    for details in ({"k" * 21: "v"}, {"Browser]": "v"}, {"12": "v"}):
        with pytest.raises(AuthyError) as caught:
            await client.create_approval_request(authy_id, "Log in?", details=details)
        assert caught.value.status is None  # refused before sending, as the service would
