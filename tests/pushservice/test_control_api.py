"""The control API's stable shapes, and the signed callbacks that deciding sends."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import socket
import time
from typing import Any

import jwt
import pytest

from push2fa.authy import signature
from push2fa.authy.params import parse_query
from push2fa.pushservice import create_emulator_app
from tests.servers import serve_asgi

from .conftest import API_KEY, APP_ID, CALLBACK_PATH, registration_token

# --- enrolment ----------------------------------------------------------------------------


async def test_enrol_device_returns_201_with_authy_id(http, base_url) -> None:
    async with http.post(
        f"{base_url}/api/devices", json={"token": registration_token("alice")}
    ) as response:
        assert response.status == 201
        body = await response.json()
    assert set(body) == {"authy_id"} and isinstance(body["authy_id"], int)

    async with http.post(
        f"{base_url}/api/devices", json={"token": registration_token("alice")}
    ) as response:
        assert (await response.json())["authy_id"] == body["authy_id"]


@pytest.mark.parametrize(
    "token",
    [
        registration_token(exp=int(time.time()) - 1),
        registration_token(key="another-api-key-0123456789abcdef"),
        registration_token(iss="someone-else"),
        registration_token(context={"custom_user_id": "u", "authy_app_id": "999"}),
        registration_token(context={"authy_app_id": APP_ID}),
        registration_token(context="not an object"),
        "not.a.jwt",
        "",
    ],
    ids=[
        "expired",
        "wrong-key",
        "wrong-iss",
        "wrong-app",
        "no-user",
        "bad-context",
        "garbage",
        "empty",
    ],
)
async def test_bad_registration_token_is_400(http, base_url, token) -> None:
    async with http.post(f"{base_url}/api/devices", json={"token": token}) as response:
        assert response.status == 400
        assert isinstance((await response.json())["error"], str)


async def test_registration_token_needs_exp_and_iat(http, base_url) -> None:
    for missing in ("exp", "iat"):
        claims = {
            "iss": "push2fa-test",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
            "context": {"custom_user_id": "u", "authy_app_id": APP_ID},
        }
        del claims[missing]
        token = jwt.encode(claims, API_KEY, algorithm="HS256")
        async with http.post(f"{base_url}/api/devices", json={"token": token}) as response:
            assert response.status == 400, missing


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"token": 5}', b'"x"'])
async def test_enrol_with_bad_body_is_400(http, base_url, body) -> None:
    async with http.post(f"{base_url}/api/devices", data=body) as response:
        assert response.status == 400


# --- pending requests and codes -----------------------------------------------------------


async def test_pending_requests_list_shape(http, base_url, enrol, push) -> None:
    authy_id = await enrol()
    first = await push(
        authy_id, details={"IP": "198.51.100.1"}, hidden_details={"c": "1"}, seconds_to_expire=120
    )
    second = await push(authy_id, message="Second", seconds_to_expire=0)
    async with http.get(f"{base_url}/api/devices/{authy_id}/requests") as response:
        assert response.status == 200
        listed = await response.json()
    assert [r["uuid"] for r in listed] == [first, second]
    assert set(listed[0]) == {"uuid", "message", "details", "hidden_details", "expires_at"}
    assert listed[0]["details"] == {"IP": "198.51.100.1"}
    assert listed[0]["hidden_details"] == {"c": "1"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listed[0]["expires_at"])
    assert listed[1]["expires_at"] is None


@pytest.mark.parametrize("path", ["requests", "totp"])
async def test_unknown_device_is_404(http, base_url, path) -> None:
    for authy_id in ("12", "nope"):
        async with http.get(f"{base_url}/api/devices/{authy_id}/{path}") as response:
            assert response.status == 404


# --- deciding and callbacks ---------------------------------------------------------------


def verified_params(received, method: str, url: str) -> dict[str, Any]:
    """Check the callback's signature as the app's webhook will, and return its params."""
    nonce = received.headers["X-Authy-Signature-Nonce"]
    given = received.headers["X-Authy-Signature"]
    params: dict[str, Any] = (
        json.loads(received.body) if method == "POST" else parse_query(received.query_string)
    )
    assert signature.verify(API_KEY, nonce, method, url, params, given)
    assert not signature.verify(API_KEY, nonce, method, url + "x", params, given)
    assert abs(int(nonce) - time.time()) < 5
    assert len(base64.b64decode(given)) == 32
    return params


async def test_decide_sends_signed_post_callback(http, base_url, enrol, push, receiver) -> None:
    authy_id = await enrol()
    uuid = await push(
        authy_id,
        details={"IP": "203.0.113.5"},
        hidden_details={"c": "z"},
        logos=[{"res": "default", "url": "https://example.com/l.png"}],
    )
    async with http.post(
        f"{base_url}/api/requests/{uuid}", json={"status": "approved"}
    ) as response:
        assert (response.status, await response.json()) == (200, {"callback_status": 200})

    [received] = receiver.requests
    assert received.method == "POST" and received.path == CALLBACK_PATH
    assert received.headers["Content-Type"] == "application/json"
    body = verified_params(received, "POST", receiver.callback_url)
    assert body["authy_id"] == authy_id
    assert body["uuid"] == uuid and body["status"] == "approved"
    assert body["callback_action"] == "approval_request_status"
    assert body["device_uuid"] == body["device"]["id"]
    assert len(body["signature"]) == 344
    transaction = body["approval_request"]["transaction"]
    assert transaction["uuid"] == uuid and transaction["status"] == "approved"
    assert transaction["details"] == {"IP": "203.0.113.5"}
    assert transaction["hidden_details"] == {"c": "z"}
    assert transaction["device_details"] == {} and transaction["requester_details"] is None
    assert transaction["encrypted"] is False and transaction["flagged"] is False
    assert transaction["message"] == "Log in to push2fa?"
    assert isinstance(transaction["customer_uuid"], int)
    approval = body["approval_request"]
    assert re.fullmatch(r"[0-9a-f]{24}", approval["app_id"])  # an object id, as Authy's
    assert approval["expiration_timestamp"] == transaction["created_at_time"] + 86400
    assert approval["logos"] == [{"res": "default", "url": "https://example.com/l.png"}]
    assert_signable_values(body)


def assert_signable_values(node: Any) -> None:
    """Spec 2.4: no floats, no '~' or '*', no strings starting with 'None'."""
    if isinstance(node, dict):
        for value in node.values():
            assert_signable_values(value)
    elif isinstance(node, list):
        for value in node:
            assert_signable_values(value)
    else:
        assert not isinstance(node, float)
        if isinstance(node, str):
            assert "~" not in node and "*" not in node and not node.startswith("None")


@pytest.mark.parametrize("callback_method", ["GET"])
async def test_decide_sends_signed_get_callback(
    http, base_url, enrol, push, receiver, callback_method
) -> None:
    authy_id = await enrol()
    uuid = await push(
        authy_id,
        details={"Where": "Paris / France"},
        logos=[
            {"res": "default", "url": "https://example.com/a.png"},
            {"res": "med", "url": "https://example.com/b.png"},
        ],
    )
    async with http.post(
        f"{base_url}/api/requests/{uuid}", json={"status": "denied", "reason": "wrong number"}
    ) as response:
        assert await response.json() == {"callback_status": 200}

    [received] = receiver.requests
    assert received.method == "GET" and received.body == b""
    assert "approval_request%5Blogos%5D%5B%5D%5Bres%5D=default" in received.query_string
    params = verified_params(received, "GET", receiver.callback_url)
    assert params["authy_id"] == str(authy_id)
    assert params["status"] == "denied"
    assert params["approval_request"]["transaction"]["reason"] == "wrong number"
    assert [logo["res"] for logo in params["approval_request"]["logos"]] == ["default", "med"]


async def test_second_decision_is_409_and_sends_no_second_callback(
    http, base_url, enrol, push, receiver
) -> None:
    uuid = await push(await enrol())
    async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": "approved"}) as r:
        assert r.status == 200
    for status in ("approved", "denied"):
        async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": status}) as r:
            assert r.status == 409
    await asyncio.sleep(0.1)
    assert len(receiver.requests) == 1


async def test_concurrent_decisions_send_exactly_one_callback(
    http, base_url, enrol, push, receiver
) -> None:
    uuid = await push(await enrol())

    async def decide(status: str) -> int:
        async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": status}) as r:
            return int(r.status)

    statuses = await asyncio.gather(*(decide(s) for s in ["approved", "denied"] * 5))
    assert sorted(statuses) == [200] + [409] * 9
    await asyncio.sleep(0.1)
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "body", [{}, {"status": "maybe"}, {"status": "approved", "reason": 5}, [], "approved"]
)
async def test_decide_with_bad_body_is_400(http, base_url, enrol, push, body) -> None:
    uuid = await push(await enrol())
    async with http.post(f"{base_url}/api/requests/{uuid}", json=body) as response:
        assert response.status == 400


async def test_decide_unknown_request_is_404(http, base_url) -> None:
    async with http.post(
        f"{base_url}/api/requests/00000000-0000-1000-8000-000000000000",
        json={"status": "approved"},
    ) as response:
        assert response.status == 404


async def test_callback_status_reports_the_webhook_answer(
    http, base_url, enrol, push, receiver
) -> None:
    receiver.status = 403
    uuid = await push(await enrol())
    async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": "approved"}) as r:
        assert await r.json() == {"callback_status": 403}
    assert len(receiver.requests) == 1


async def test_server_errors_are_retried(http, base_url, enrol, push, receiver) -> None:
    receiver.status = 503
    uuid = await push(await enrol())
    async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": "approved"}) as r:
        assert await r.json() == {"callback_status": 503}
    assert len(receiver.requests) == 3


async def test_unreachable_webhook_gives_null_status(http, settings) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{probe.getsockname()[1]}/webhooks/authy"
    unreachable = dataclasses.replace(settings, callback_url=closed_url)
    async with serve_asgi(create_emulator_app(unreachable)) as url:
        async with http.post(
            f"{url}/_emulator/api/devices", json={"token": registration_token()}
        ) as response:
            authy_id = (await response.json())["authy_id"]
        async with http.post(
            f"{url}/_emulator/onetouch/json/users/{authy_id}/approval_requests",
            json={"message": "hi"},
            headers={"X-Authy-API-Key": API_KEY},
        ) as response:
            uuid = (await response.json())["approval_request"]["uuid"]
        async with http.post(
            f"{url}/_emulator/api/requests/{uuid}", json={"status": "approved"}
        ) as response:
            assert (response.status, await response.json()) == (200, {"callback_status": None})


async def test_test_callback_uses_authy_id_1234(http, base_url, receiver) -> None:
    async with http.post(f"{base_url}/api/test-callback") as response:
        assert await response.json() == {"callback_status": 200}
    [received] = receiver.requests
    body = verified_params(received, "POST", receiver.callback_url)
    assert body["authy_id"] == 1234
    assert body["callback_action"] == "approval_request_status"
    assert body["status"] == "approved"
    assert_signable_values(body)


# --- attacks on the control API ------------------------------------------------------------
# It approves logins without a phone and reads codes, so in every mode (these fixtures are
# the development defaults) it demands the API key, in the header only.

CONTROL_CALLS = [
    ("POST", "/api/devices", {"token": "TOKEN"}),
    ("GET", "/api/devices/AUTHY_ID/requests", None),
    ("GET", "/api/devices/AUTHY_ID/totp", None),
    ("POST", "/api/requests/UUID", {"status": "approved"}),
    ("POST", "/api/test-callback", None),
]


def attack_call(path: str, body: Any, authy_id: int, uuid: str) -> tuple[str, Any]:
    path = path.replace("AUTHY_ID", str(authy_id)).replace("UUID", uuid)
    if isinstance(body, dict) and body.get("token") == "TOKEN":
        body = {"token": registration_token("mallory")}
    return path, body


async def assert_nothing_changed(http, base_url, receiver, authy_id: int, uuid: str) -> None:
    async with http.get(f"{base_url}/api/devices/{authy_id}/requests") as response:
        assert [r["uuid"] for r in await response.json()] == [uuid], "the push was answered"
    assert receiver.requests == [], "a callback was sent"
    async with http.get(
        f"{base_url}/protected/json/registrations/status",
        params={"custom_user_id": "mallory"},
        headers={"X-Authy-API-Key": API_KEY},
    ) as response:
        assert (await response.json())["registration"]["status"] == "pending"


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"headers": {"X-Authy-API-Key": "wrong-key-0123456789abcdef0123456789"}},
        {"params": {"api_key": API_KEY}},
        {"body_key": API_KEY},
    ],
    ids=["no-key", "wrong-key", "key-in-query", "key-in-body"],
)
async def test_control_api_refuses_every_call_without_the_key_header(
    anonymous, http, base_url, enrol, push, receiver, credentials
) -> None:
    authy_id = await enrol()
    uuid = await push(authy_id)
    for method, template, body in CONTROL_CALLS:
        path, payload = attack_call(template, body, authy_id, uuid)
        kwargs: dict[str, Any] = {
            k: v for k, v in credentials.items() if k in ("headers", "params")
        }
        if "body_key" in credentials:
            payload = {**(payload or {}), "api_key": credentials["body_key"]}
        if payload is not None:
            kwargs["json"] = payload
        async with anonymous.request(method, f"{base_url}{path}", **kwargs) as response:
            assert response.status == 401, (method, path, await response.text())
            assert (await response.json())["error_code"] == "60001"
    await assert_nothing_changed(http, base_url, receiver, authy_id, uuid)


async def test_control_api_works_with_the_key_header(http, base_url) -> None:
    async with http.post(
        f"{base_url}/api/devices",
        json={"token": registration_token("prod")},
        headers={"X-Authy-API-Key": API_KEY},
    ) as response:
        assert response.status == 201


async def test_ids_are_random_and_far_too_many_to_try(http, base_url, enrol) -> None:
    authy_ids = [await enrol(f"user-{n}") for n in range(5)]
    async with http.get(f"{base_url}/api/devices/{authy_ids[0]}/totp") as response:
        assert response.status == 200

    assert all(10**12 <= authy_id < 2**53 for authy_id in authy_ids)
    gaps = {abs(a - b) for a, b in zip(authy_ids, authy_ids[1:], strict=False)}
    assert min(gaps) > 1000, "ids must not be sequential or clustered"


async def test_a_client_guessing_keys_is_stopped_while_the_key_holder_is_not(
    anonymous, http, base_url, enrol
) -> None:
    authy_id = await enrol()
    wrong = {"X-Authy-API-Key": "guess-0000000000000000000000000000"}
    statuses = []
    for _ in range(25):
        async with anonymous.get(
            f"{base_url}/protected/json/users/{authy_id}/status", headers=wrong
        ) as response:
            statuses.append(response.status)

    assert statuses[:20] == [401] * 20
    assert set(statuses[20:]) == {429}, statuses
    async with anonymous.get(f"{base_url}/phone") as response:
        assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    async with http.get(f"{base_url}/api/devices/{authy_id}/requests") as response:
        assert response.status == 200, "the key holder (the app) is never locked out"
