"""The official ``authy`` client (PyPI 2.2.6, code nobody here wrote) against the push service.

An app written for api.authy.com must work by changing only its base URL, so every call
the client offers for the endpoints the push service answers runs here over real HTTP,
and every callback is checked with the client's own ``validate_one_touch_signature``,
sent as POST and as GET. The client is synchronous (requests), so each call runs in a
thread while the server runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import pytest
from authy.api import AuthyApiClient

from push2fa.authy.params import parse_query

from .conftest import API_KEY

T = TypeVar("T")


async def off_loop(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(call, *args, **kwargs)


@pytest.fixture
def official(base_url: str) -> AuthyApiClient:
    return AuthyApiClient(API_KEY, api_uri=base_url)


async def current_code(http, base_url, authy_id) -> str:
    async with http.get(f"{base_url}/api/devices/{authy_id}/totp") as response:
        code: str = (await response.json())["code"]
    return code


async def decide(http, base_url, uuid: str, status: str) -> None:
    async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": status}) as r:
        assert r.status == 200, await r.text()


# --- users ----------------------------------------------------------------------------


async def test_users_create_status_delete(official) -> None:
    user = await off_loop(official.users.create, "ann@example.com", "555-012-3456", 1)
    assert user.ok(), user.errors()
    assert isinstance(user.id, int)
    again = await off_loop(official.users.create, "other@example.com", "5550123456", 1)
    assert again.id == user.id  # matched by phone, as Authy does

    status = await off_loop(official.users.status, user.id)
    assert status.ok() and status["status"]["registered"] is False
    assert status["status"]["phone_number"] == "XXX-XXX-3456"

    deleted = await off_loop(official.users.delete, user.id)
    assert deleted.ok() and deleted["message"] == "User removed from application"
    gone = await off_loop(official.users.status, user.id)
    assert not gone.ok() and gone.errors()["message"] == "User not found."


async def test_invalid_user_reports_field_errors(official) -> None:
    user = await off_loop(official.users.create, "not-an-email", "12", 1)
    assert not user.ok() and user.id is None
    assert user.errors()["email"] == "is invalid"


async def test_registration_status_and_user_status_of_an_app_user(official, enrol) -> None:
    pending = await off_loop(official.users.registration_status, "official-1")
    assert pending.ok() and pending["registration"]["status"] == "pending"
    authy_id = await enrol("official-1")
    done = await off_loop(official.users.registration_status, "official-1")
    assert done["registration"] == {"status": "completed", "authy_id": authy_id}
    status = await off_loop(official.users.status, authy_id)
    assert status["status"]["registered"] is True and status["status"]["devices"] == ["android"]


async def test_sms_and_call_are_ignored_for_app_users_and_refused_otherwise(
    official, enrol
) -> None:
    authy_id = await enrol()
    sms = await off_loop(official.users.request_sms, authy_id)
    assert sms.ok() and sms.ignored()
    call = await off_loop(official.users.request_call, authy_id)
    assert call.ok() and call.ignored()

    forced = await off_loop(official.users.request_sms, authy_id, {"force": "true"})
    assert not forced.ok() and "cannot deliver" in forced.errors()["message"]
    phone_user = (await off_loop(official.users.create, "p@example.com", "555-013-0000", 1)).id
    refused = await off_loop(official.users.request_call, phone_user)
    assert not refused.ok() and refused.response.status_code == 403


async def test_generate_qr_for_an_authenticator_app(official, enrol) -> None:
    authy_id = await enrol()
    qr = await off_loop(official.users.generate_qr, authy_id, size=300, label="ann")
    assert qr.ok(), qr.errors()
    assert qr["label"] == "ann" and qr["qr_code"].startswith("data:image/svg+xml;base64,")


async def test_phone_verification_is_refused_clearly(official) -> None:
    for call, args in (
        (official.phones.verification_start, ("555-012-3456", "1")),
        (official.phones.verification_check, ("555-012-3456", "1", "1234")),
        (official.phones.info, ("555-012-3456", "1")),
    ):
        answer = await off_loop(call, *args)
        assert answer.response.status_code == 403, answer.content
        assert "cannot deliver" in answer.errors()["message"]


# --- tokens ---------------------------------------------------------------------------


async def test_tokens_verify_valid_then_reused(official, http, base_url, enrol) -> None:
    authy_id = await enrol()
    code = await current_code(http, base_url, authy_id)
    token = await off_loop(official.tokens.verify, authy_id, code)
    assert token.ok()
    reused = await off_loop(official.tokens.verify, authy_id, code)
    assert not reused.ok() and reused["error_code"] == "60019"
    wrong = await off_loop(official.tokens.verify, authy_id, "0000000")
    assert not wrong.ok()


# --- the application ------------------------------------------------------------------


async def test_app_details_and_stats(official) -> None:
    app = await off_loop(official.apps.fetch)
    assert app.ok() and app["app"]["name"] == "push2fa-test"
    stats = await off_loop(official.stats.fetch)
    assert stats.ok() and stats["stats"]


async def test_wrong_api_key_is_refused(base_url) -> None:
    stranger = AuthyApiClient("not-the-key", api_uri=base_url)
    app = await off_loop(stranger.apps.fetch)
    assert not app.ok() and app.response.status_code == 401
    assert app["error_code"] == "60001"


# --- OneTouch and its callbacks -------------------------------------------------------


async def test_one_touch_request_status_and_errors(official, http, base_url, enrol) -> None:
    authy_id = await enrol()
    sent = await off_loop(
        official.one_touch.send_request,
        authy_id,
        "Log in to push2fa?",
        seconds_to_expire=120,
        details={"Browser": "Firefox"},
        hidden_details={"ip": "203.0.113.9"},
        logos=[{"res": "default", "url": "https://example.com/l.png"}],
    )
    assert sent.ok() and sent.status() is True
    uuid = sent.get_uuid()
    pending = await off_loop(official.one_touch.get_approval_status, uuid)
    assert pending.ok() and pending["approval_request"]["status"] == "pending"
    await decide(http, base_url, uuid, "denied")
    denied = await off_loop(official.one_touch.get_approval_status, uuid)
    assert denied["approval_request"]["status"] == "denied"

    missing = await off_loop(official.one_touch.get_approval_status, "no-such-request")
    assert not missing.ok() and missing["error_code"] == "60049"
    unknown = await off_loop(official.one_touch.send_request, 999999, "Log in?")
    assert not unknown.ok() and unknown["error_code"] == "60026"


CALLBACK_DETAILS = {"Email Address": "ann@example.com", "Where": "Paris / Île-de-France"}


async def approve_and_receive(official, http, base_url, enrol, receiver, **options: Any):
    authy_id = await enrol()
    sent = await off_loop(
        official.one_touch.send_request, authy_id, "Log in?", details=CALLBACK_DETAILS, **options
    )
    assert sent.ok(), sent.errors()
    await decide(http, base_url, sent.get_uuid(), "approved")
    received = await receiver.next_request()
    headers = {name.lower(): value for name, value in received.headers.items()}
    return received, headers["x-authy-signature"], headers["x-authy-signature-nonce"]


async def test_post_callback_passes_validate_one_touch_signature(
    official, http, base_url, enrol, receiver
) -> None:
    received, signature, nonce = await approve_and_receive(
        official,
        http,
        base_url,
        enrol,
        receiver,
        logos=[
            {"res": "default", "url": "https://example.com/d.png"},
            {"res": "med", "url": "https://example.com/m.png"},
        ],
    )
    params = json.loads(received.body)
    validate = official.one_touch.validate_one_touch_signature
    assert validate(signature, nonce, "POST", receiver.callback_url, params)
    params["status"] = "denied"  # a tampered body fails the official check
    assert not validate(signature, nonce, "POST", receiver.callback_url, params)


@pytest.mark.parametrize("callback_method", ["GET"])
async def test_get_callback_passes_validate_one_touch_signature(
    official, http, base_url, enrol, receiver, callback_method
) -> None:
    received, signature, nonce = await approve_and_receive(
        official,
        http,
        base_url,
        enrol,
        receiver,
        logos=[
            {"res": "default", "url": "https://example.com/d.png"},
            {"res": "low", "url": "https://example.com/l.png"},
        ],
    )
    assert received.method == "GET"
    validate = official.one_touch.validate_one_touch_signature
    # As a Django/Flask app would hand it over: the nested parameters...
    nested = parse_query(received.query_string)
    assert validate(signature, nonce, "GET", receiver.callback_url, nested)
    assert nested["approval_request"]["transaction"]["details"] == CALLBACK_DETAILS


@pytest.mark.parametrize("callback_method", ["GET"])
async def test_get_callback_passes_as_a_flat_dict_without_logos(
    official, http, base_url, enrol, receiver, callback_method
) -> None:
    received, signature, nonce = await approve_and_receive(
        official, http, base_url, enrol, receiver
    )
    validate = official.one_touch.validate_one_touch_signature
    # ...or as the flat request.args most apps use, which works when no key repeats.
    flat = dict(parse_qsl(received.query_string, keep_blank_values=True))
    assert validate(signature, nonce, "GET", receiver.callback_url, flat)
    flat["status"] = "denied"
    assert not validate(signature, nonce, "GET", receiver.callback_url, flat)
