"""The Authy REST endpoints answer as api.authy.com does (spec sections 1, 3, 4)."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import aiohttp
import pytest

from push2fa.pushservice import totp

from .conftest import API_KEY


async def call(
    http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    async with http.request(method, url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


def assert_error(body: Any, code: str) -> None:
    assert body["success"] is False
    assert body["error_code"] == code
    assert isinstance(body["error_code"], str)
    assert isinstance(body["message"], str)
    assert isinstance(body["errors"], dict)


# --- API key ------------------------------------------------------------------------------

INVALID_KEY_BODY = {
    "error_code": "60001",
    "message": "Invalid API key",
    "errors": {"message": "Invalid API key"},
    "success": False,
}


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, ""),
        ({"X-Authy-API-Key": "wrong"}, ""),
        ({}, "?api_key=wrong"),
        ({"X-Authy-API-Key": ""}, "?api_key="),
        ({"X-Authy-API-Key": "ключ"}, ""),
    ],
)
async def test_missing_or_wrong_api_key_is_401_60001(http, base_url, headers, query) -> None:
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/users/1/status{query}", headers=headers
    )
    assert (status, body) == (401, INVALID_KEY_BODY)


async def test_api_key_in_header_or_query_is_accepted(http, base_url) -> None:
    url = f"{base_url}/protected/json/registrations/status?custom_user_id=nobody"
    status, _ = await call(http, "GET", url, headers={"X-Authy-API-Key": API_KEY})
    assert status == 200
    status, _ = await call(http, "GET", f"{url}&api_key={API_KEY}")
    assert status == 200


# --- users --------------------------------------------------------------------------------


async def test_create_user_from_json_form_or_query_gives_same_id_per_phone(
    http, base_url, key
) -> None:
    url = f"{base_url}/protected/json/users/new"
    status, body = await call(
        http,
        "POST",
        url,
        headers=key,
        json={
            "user": {"email": "a@example.com", "cellphone": "555-123-4567", "country_code": 1},
            "send_install_link_via_sms": False,
        },
    )
    assert status == 200
    assert body["success"] is True and body["message"] == "User created successfully."
    authy_id = body["user"]["id"]
    assert isinstance(authy_id, int) and authy_id != 1234

    form = {
        "user[email]": "b@example.com",
        "user[cellphone]": "5551234567",
        "user[country_code]": "1",
    }
    status, body = await call(http, "POST", url, headers=key, data=form)
    assert (status, body["user"]["id"]) == (200, authy_id)

    query = (
        "user[email]=c@example.com&user[cellphone]=555.123.4567&user[country_code]=1"
        "&user[send_install_link_via_sms]=false"
    )
    status, body = await call(http, "POST", f"{url}?{query}", headers=key)
    assert (status, body["user"]["id"]) == (200, authy_id)

    status, other = await call(
        http, "POST", url, headers=key, data={**form, "user[country_code]": "44"}
    )
    assert status == 200 and other["user"]["id"] != authy_id


async def test_invalid_user_is_400_60027_with_field_errors_repeated(http, base_url, key) -> None:
    status, body = await call(
        http,
        "POST",
        f"{base_url}/protected/json/users/new",
        headers=key,
        data={"user[email]": "a@example.com", "user[cellphone]": "12ab"},
    )
    assert status == 400
    assert body == {
        "message": "User was not valid",
        "success": False,
        "errors": {"cellphone": "is invalid", "message": "User was not valid"},
        "cellphone": "is invalid",
        "error_code": "60027",
    }


async def test_user_status_shapes(http, base_url, key, enrol) -> None:
    authy_id = await enrol("status-user")
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/users/{authy_id}/status", headers=key
    )
    assert status == 200
    assert body["success"] is True and body["message"] == "User status."
    assert body["status"]["authy_id"] == authy_id
    assert body["status"]["registered"] is True
    assert body["status"]["devices"] == ["android"]

    status, body = await call(
        http,
        "POST",
        f"{base_url}/protected/json/users/new",
        headers=key,
        json={"user": {"email": "p@example.com", "cellphone": "2125550199"}},
    )
    phone_user = body["user"]["id"]
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/users/{phone_user}/status", headers=key
    )
    assert body["status"]["registered"] is False
    assert body["status"]["phone_number"] == "XXX-XXX-0199"
    assert body["status"]["country_code"] == 1


@pytest.mark.parametrize("authy_id", ["99", "abc", "-1", "1" * 40])
async def test_unknown_user_status_is_404_60026(http, base_url, key, authy_id) -> None:
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/users/{authy_id}/status", headers=key
    )
    assert status == 404
    assert body == {
        "message": "User not found.",
        "success": False,
        "errors": {"message": "User not found."},
        "error_code": "60026",
    }


@pytest.mark.parametrize("path", ["users/delete/{id}", "users/{id}/delete", "users/{id}/remove"])
async def test_delete_user_on_each_clients_path(http, base_url, key, enrol, path) -> None:
    authy_id = await enrol("to-delete")
    url = f"{base_url}/protected/json/{path.format(id=authy_id)}"
    status, body = await call(http, "POST", url, headers=key)
    assert (status, body) == (200, {"message": "User removed from application", "success": True})
    status, body = await call(http, "POST", url, headers=key)
    assert status == 404 and body["error_code"] == "60026"
    status, body = await call(
        http,
        "GET",
        f"{base_url}/protected/json/registrations/status?custom_user_id=to-delete",
        headers=key,
    )
    assert body["registration"] == {"status": "pending"}


async def test_registration_status_pending_then_completed(http, base_url, key, enrol) -> None:
    url = f"{base_url}/protected/json/registrations/status?custom_user_id=reg-1"
    assert await call(http, "GET", url, headers=key) == (
        200,
        {"registration": {"status": "pending"}, "success": True},
    )
    authy_id = await enrol("reg-1")
    assert await call(http, "GET", url, headers=key) == (
        200,
        {"registration": {"status": "completed", "authy_id": authy_id}, "success": True},
    )
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/registrations/status", headers=key
    )
    assert status == 400 and body["error_code"] == "60004"


# --- approval requests --------------------------------------------------------------------


UUID_V1 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
OBJECT_ID = re.compile(r"[0-9a-f]{24}")


async def status_of(http, base_url, key, uuid) -> dict[str, Any]:
    status, body = await call(
        http, "GET", f"{base_url}/onetouch/json/approval_requests/{uuid}", headers=key
    )
    assert status == 200 and body["success"] is True
    request: dict[str, Any] = body["approval_request"]
    return request


async def test_create_approval_request_and_read_its_status(http, base_url, key, enrol) -> None:
    authy_id = await enrol()
    status, body = await call(
        http,
        "POST",
        f"{base_url}/onetouch/json/users/{authy_id}/approval_requests",
        headers=key,
        json={
            "message": "Log in?",
            "details": {"IP": "203.0.113.9", "Count": 3},
            "hidden_details": {"challenge": "abc"},
        },
    )
    assert status == 200
    assert set(body) == {"approval_request", "success"} and body["success"] is True
    uuid = body["approval_request"]["uuid"]
    assert UUID_V1.fullmatch(uuid)

    request = await status_of(http, base_url, key, uuid)
    assert request["status"] == "pending"
    assert request["uuid"] == uuid
    assert request["_authy_id"] == authy_id
    assert request["seconds_to_expire"] == 86400
    assert request["processed_at"] is None
    assert request["hidden_details"] == {"challenge": "abc"}
    assert ISO_Z.fullmatch(request["created_at"]) and ISO_Z.fullmatch(request["updated_at"])
    # As real Authy: app_id is a 24-hex object id, _app_serial_id the console's number.
    assert OBJECT_ID.fullmatch(request["app_id"]) and request["_app_serial_id"] == 424242
    assert "device" not in request


async def test_parameters_merge_query_form_and_brackets(http, base_url, key, enrol) -> None:
    authy_id = await enrol()
    url = (
        f"{base_url}/onetouch/json/users/{authy_id}/approval_requests"
        "?seconds_to_expire=0&details[From%20query]=q"
    )
    form = [
        ("message", "Form message"),
        ("details[Browser]", "Firefox"),
        ("hidden_details[x]", "1"),
        ("logos[][res]", "default"),
        ("logos[][url]", "https://example.com/a.png"),
        ("logos[][res]", "low"),
        ("logos[][url]", "https://example.com/b.png"),
    ]
    status, body = await call(http, "POST", url, headers=key, data=form)
    assert status == 200, body
    request = await status_of(http, base_url, key, body["approval_request"]["uuid"])
    assert request["seconds_to_expire"] == 0
    assert request["hidden_details"] == {"x": "1"}

    async with http.get(f"{base_url}/api/devices/{authy_id}/requests") as response:
        [listed] = await response.json()
    assert listed["message"] == "Form message"
    assert listed["details"] == {"From query": "q", "Browser": "Firefox"}
    assert listed["expires_at"] is None


async def test_json_body_is_read_whatever_the_content_type(http, base_url, key, enrol) -> None:
    authy_id = await enrol()
    url = f"{base_url}/onetouch/json/users/{authy_id}/approval_requests"
    for content_type in ("text/plain", "application/octet-stream", ""):
        headers = {**key, "Content-Type": content_type}
        status, body = await call(
            http, "POST", url, headers=headers, data=b'{"message": "hi", "seconds_to_expire": 60}'
        )
        assert status == 200, (content_type, body)
        request = await status_of(http, base_url, key, body["approval_request"]["uuid"])
        assert request["seconds_to_expire"] == 60


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"message": ""},
        {"message": "x" * 201},
        {"message": 5},
        {"message": "ok", "seconds_to_expire": -1},
        {"message": "ok", "seconds_to_expire": "soon"},
        {"message": "ok", "seconds_to_expire": 1.5},
        {"message": "ok", "seconds_to_expire": 10**30},
        {"message": "ok", "details": "not a map"},
        {"message": "ok", "details": {"k": {"nested": "no"}}},
        {"message": "ok", "details": {"k": "v" * 201}},
        {"message": "ok", "logos": [{"res": "huge", "url": "https://x"}]},
        {"message": "ok", "logos": {"res": "default"}},
        # Authy documents 20 characters for a details key.
        {"message": "ok", "details": {"k" * 21: "v"}},
        {"message": "ok", "hidden_details": {"k" * 201: "v"}},
        # Keys a GET callback could not carry back: brackets, or digits read as an index.
        {"message": "ok", "details": {"a]": "v"}},
        {"message": "ok", "details": {"a[b]": "v"}},
        {"message": "ok", "hidden_details": {"[": "v"}},
        {"message": "ok", "details": {"7": "v", "b": "w"}},
        # Each resolution once: a GET callback keeps at most four logos in order.
        {
            "message": "ok",
            "logos": [{"res": "default", "url": "https://x/a"}] * 2,
        },
    ],
)
async def test_invalid_approval_request_is_400(http, base_url, key, enrol, params) -> None:
    authy_id = await enrol()
    status, body = await call(
        http,
        "POST",
        f"{base_url}/onetouch/json/users/{authy_id}/approval_requests",
        headers=key,
        json=params,
    )
    assert status == 400, body
    assert_error(body, "60004")


async def test_message_of_200_characters_is_accepted(http, base_url, key, enrol, push) -> None:
    authy_id = await enrol()
    assert await push(authy_id, message="m" * 200)


@pytest.mark.parametrize(
    "body",
    [
        b'{"message": "\\ud800"}',
        b'{"message": "ok", "details": {"\\udfff": "v"}}',
        b'{"message": "ok", "hidden_details": {"k": "a\\ud83d"}}',
    ],
)
async def test_lone_surrogates_in_json_are_400_not_an_unsignable_request(
    http, base_url, key, enrol, body
) -> None:
    # JSON escapes can spell text no UTF-8 holds; accepted, the callback could never be signed.
    authy_id = await enrol()
    status, answer = await call(
        http,
        "POST",
        f"{base_url}/onetouch/json/users/{authy_id}/approval_requests",
        headers={**key, "Content-Type": "application/json"},
        data=body,
    )
    assert status == 400, answer
    assert_error(answer, "60002")
    async with http.get(f"{base_url}/api/devices/{authy_id}/requests") as response:
        assert await response.json() == []  # nothing was stored


async def test_details_key_of_20_characters_is_accepted(http, base_url, key, enrol) -> None:
    uuid = await (await _pusher(http, base_url, key))(
        await enrol(), details={"k" * 20: "v"}, hidden_details={"h" * 200: "v"}
    )
    assert (await status_of(http, base_url, key, uuid))["hidden_details"] == {"h" * 200: "v"}


async def test_bracket_details_key_is_refused_with_a_clear_error(
    http, base_url, key, enrol
) -> None:
    status, body = await call(
        http,
        "POST",
        f"{base_url}/onetouch/json/users/{await enrol()}/approval_requests",
        headers=key,
        json={"message": "Log in?", "details": {"Browser]": "Firefox"}},
    )
    assert (status, body["error_code"]) == (400, "60004")
    assert body["errors"]["details"] == "keys must not contain '[' or ']'"


async def _pusher(http, base_url, key):
    async def create(authy_id: int, **params: Any) -> str:
        status, body = await call(
            http,
            "POST",
            f"{base_url}/onetouch/json/users/{authy_id}/approval_requests",
            headers=key,
            json={"message": "Log in?", **params},
        )
        assert status == 200, body
        uuid: str = body["approval_request"]["uuid"]
        return uuid

    return create


async def test_approval_request_for_unknown_user_is_404_60026(http, base_url, key) -> None:
    status, body = await call(
        http,
        "POST",
        f"{base_url}/onetouch/json/users/77/approval_requests",
        headers=key,
        json={"message": "hi"},
    )
    assert status == 404 and body["error_code"] == "60026"


async def test_approval_request_for_user_without_app_is_refused(http, base_url, key) -> None:
    _, body = await call(
        http,
        "POST",
        f"{base_url}/protected/json/users/new",
        headers=key,
        json={"user": {"email": "n@example.com", "cellphone": "2125550111"}},
    )
    status, body = await call(
        http,
        "POST",
        f"{base_url}/onetouch/json/users/{body['user']['id']}/approval_requests",
        headers=key,
        json={"message": "hi"},
    )
    assert status == 400
    assert_error(body, "60050")


async def test_unknown_approval_request_is_404_60049_with_empty_errors(http, base_url, key) -> None:
    uuid = "8d031630-d15b-0134-b0a8-0a77bbe8093e"
    status, body = await call(
        http, "GET", f"{base_url}/onetouch/json/approval_requests/{uuid}", headers=key
    )
    assert status == 404
    assert body == {
        "message": f"Approval request not found: {uuid}",
        "success": False,
        "errors": {},
        "error_code": "60049",
    }


async def test_request_expires_lazily_and_cannot_be_decided(
    http, base_url, key, enrol, push
) -> None:
    authy_id = await enrol()
    uuid = await push(authy_id, seconds_to_expire=1)
    assert (await status_of(http, base_url, key, uuid))["status"] == "pending"
    await asyncio.sleep(1.2)
    request = await status_of(http, base_url, key, uuid)
    assert request["status"] == "expired"
    assert request["processed_at"] is None
    async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": "approved"}) as r:
        assert r.status == 409
    async with http.get(f"{base_url}/api/devices/{authy_id}/requests") as r:
        assert await r.json() == []


async def test_decided_request_status_has_device_and_processed_at(
    http, base_url, key, enrol, push, receiver
) -> None:
    authy_id = await enrol()
    uuid = await push(authy_id)
    async with http.post(
        f"{base_url}/api/requests/{uuid}", json={"status": "denied", "reason": "42"}
    ) as response:
        assert response.status == 200
    request = await status_of(http, base_url, key, uuid)
    assert request["status"] == "denied"
    assert ISO_Z.fullmatch(request["processed_at"])
    assert request["device"]["os_type"] == "android"
    assert isinstance(request["device"]["id"], int)
    assert request["reason"] == "42"


# --- TOTP ---------------------------------------------------------------------------------


async def current_code(http, base_url, authy_id) -> str:
    async with http.get(f"{base_url}/api/devices/{authy_id}/totp") as response:
        body = await response.json()
    assert response.status == 200
    assert 1 <= body["seconds_left"] <= 30
    code: str = body["code"]
    assert re.fullmatch(r"[0-9]{7}", code)
    return code


async def test_valid_token_then_reused_token(http, base_url, key, enrol) -> None:
    authy_id = await enrol()
    code = await current_code(http, base_url, authy_id)
    url = f"{base_url}/protected/json/verify/{code}/{authy_id}?force=true"
    status, body = await call(http, "GET", url, headers=key)
    assert status == 200
    assert body["success"] == "true"
    assert body["token"] == "is valid" and body["message"] == "Token is valid."
    assert isinstance(body["device"]["id"], int)

    status, body = await call(http, "GET", url, headers=key)
    assert status == 401
    assert_error(body, "60019")


@pytest.mark.parametrize("token", ["wrong", "123", "1234567890123", "１２３４５６７"])
async def test_malformed_token_is_invalid(http, base_url, key, enrol, token) -> None:
    authy_id = await enrol()
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/verify/{token}/{authy_id}", headers=key
    )
    assert status == 401
    assert_error(body, "60020")


async def test_wrong_token_is_401_60020(http, base_url, key, enrol) -> None:
    authy_id = await enrol()
    code = await current_code(http, base_url, authy_id)
    wrong = str((int(code) + 5_000_000) % 10**7).zfill(7)
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/verify/{wrong}/{authy_id}", headers=key
    )
    assert status == 401
    assert body == {
        "message": "Token is invalid",
        "token": "is invalid",
        "success": False,
        "errors": {"message": "Token is invalid"},
        "error_code": "60020",
    }


async def test_token_for_unknown_user_is_404(http, base_url, key) -> None:
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/verify/1234567/55", headers=key
    )
    assert status == 404 and body["error_code"] == "60026"


# --- robustness ---------------------------------------------------------------------------


MALFORMED_BODIES = [
    (b"{", "application/json"),
    (b"[1, 2]", "application/json"),
    (b"\xff\xfe", "application/json"),
    (b"[" * 50_000, "application/json"),
    (b"message=a&message=b", "application/x-www-form-urlencoded"),
    (b"a[=1", "application/x-www-form-urlencoded"),
    (b"a]=1", "text/plain"),
    (b"%ff=1", "application/x-www-form-urlencoded"),
    (b"x" * 70_000, "application/json"),
    (b"--b\r\nbroken", "multipart/form-data; boundary=b"),
]


@pytest.mark.parametrize(("body", "content_type"), MALFORMED_BODIES)
async def test_malformed_bodies_are_4xx_never_500(
    http, base_url, key, enrol, body, content_type
) -> None:
    authy_id = await enrol()
    status, answer = await call(
        http,
        "POST",
        f"{base_url}/onetouch/json/users/{authy_id}/approval_requests",
        headers={**key, "Content-Type": content_type},
        data=body,
    )
    assert 400 <= status < 500, answer
    assert answer["success"] is False and isinstance(answer["error_code"], str)


@pytest.mark.parametrize(
    "query", ["a[b]=1&a=2", "a[=1", "%ff", "&".join(f"k{i}=v" for i in range(1500))]
)
async def test_malformed_query_strings_are_400(http, base_url, key, query) -> None:
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/registrations/status?{query}", headers=key
    )
    assert status == 400
    assert_error(body, "60002")


async def test_unknown_route_and_method_are_json_errors(http, base_url, key) -> None:
    status, body = await call(http, "GET", f"{base_url}/protected/json/nothing", headers=key)
    assert status == 404 and body["success"] is False
    status, body = await call(http, "DELETE", f"{base_url}/protected/json/users/new", headers=key)
    assert status == 405 and body["success"] is False


async def test_missing_message_error_names_the_field(http, base_url, key, enrol) -> None:
    authy_id = await enrol()
    status, body = await call(
        http,
        "POST",
        f"{base_url}/onetouch/json/users/{authy_id}/approval_requests",
        headers=key,
        json={"details": {"a": "b"}},
    )
    assert status == 400
    assert body["errors"] == {"message": "message is required"}


async def test_null_seconds_to_expire_means_the_one_day_default(
    http, base_url, key, enrol, push
) -> None:
    # authy-python sends null when the caller gives no value.
    uuid = await push(await enrol(), seconds_to_expire=None, logos=None, details=None)
    assert (await status_of(http, base_url, key, uuid))["seconds_to_expire"] == 86400


# --- GET callbacks ------------------------------------------------------------------------


@pytest.mark.parametrize("callback_method", ["GET"])
async def test_get_callback_lists_keys_sorted_as_authy_sends_them(
    http, base_url, enrol, push, receiver, callback_method
) -> None:
    uuid = await push(
        await enrol(),
        details={"Zone": "z", "Account": "a b/c"},
        logos=[
            {"res": "default", "url": "https://example.com/d.png"},
            {"res": "low", "url": "https://example.com/l.png"},
        ],
    )
    async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": "approved"}) as r:
        assert r.status == 200
    query = receiver.requests[-1].query_string
    keys = [pair.split("=", 1)[0] for pair in query.split("&")]
    # authy-java's captured GET callback is sorted by key; array elements keep their order.
    assert sorted(set(keys)) == sorted(dict.fromkeys(keys), key=keys.index)
    assert keys[-3:] == ["signature", "status", "uuid"]
    # Logos keep their order: default's res and url, then low's.
    logo_values = [p.split("=", 1)[1] for p in query.split("&") if "logos" in p]
    assert logo_values == [
        "default",
        "https%3A%2F%2Fexample.com%2Fd.png",
        "low",
        "https%3A%2F%2Fexample.com%2Fl.png",
    ]


# --- SMS, voice, e-mail -------------------------------------------------------------------


@pytest.mark.parametrize(("channel", "name"), [("sms", "SMS"), ("call", "Call")])
async def test_sms_or_call_for_an_app_user_is_ignored_as_authy_does(
    http, base_url, key, enrol, channel, name
) -> None:
    authy_id = await enrol()
    status, body = await call(
        http, "GET", f"{base_url}/protected/json/{channel}/{authy_id}", headers=key
    )
    assert status == 200
    assert body["ignored"] is True and body["success"] is True
    assert body["device"] == "android"
    assert body["message"].startswith(f"Ignored: {name} is not needed for smartphones.")


@pytest.mark.parametrize("channel", ["sms", "call"])
async def test_forced_sms_or_call_is_a_clear_403_never_a_fake_success(
    http, base_url, key, enrol, channel
) -> None:
    authy_id = await enrol()
    phone_user = await _phone_user(http, base_url, key)
    for url in (
        f"{base_url}/protected/json/{channel}/{authy_id}?force=true",
        f"{base_url}/protected/json/{channel}/{phone_user}",
    ):
        status, body = await call(http, "GET", url, headers=key)
        assert status == 403, body
        assert_error(body, "60002")
        assert "cannot deliver" in body["message"]


async def test_sms_for_unknown_user_is_404_60026(http, base_url, key) -> None:
    status, body = await call(http, "GET", f"{base_url}/protected/json/sms/4242", headers=key)
    assert status == 404
    assert_error(body, "60026")


async def test_email_token_is_a_clear_403(http, base_url, key, enrol) -> None:
    status, body = await call(
        http, "POST", f"{base_url}/protected/json/email/{await enrol()}", headers=key
    )
    assert status == 403
    assert_error(body, "60002")


async def _phone_user(http, base_url, key) -> int:
    status, body = await call(
        http,
        "POST",
        f"{base_url}/protected/json/users/new",
        headers=key,
        json={"user": {"email": "p@example.com", "cellphone": "555-010-9999", "country_code": 1}},
    )
    assert status == 200, body
    authy_id: int = body["user"]["id"]
    return authy_id


# --- TOTP secret for third-party authenticator apps ---------------------------------------


async def test_secret_gives_a_qr_whose_codes_verify(http, base_url, key, enrol) -> None:
    authy_id = await enrol()
    status, body = await call(
        http,
        "POST",
        f"{base_url}/protected/json/users/{authy_id}/secret",
        headers=key,
        json={"qr_size": 250, "label": "alice@example.com"},
    )
    assert status == 200, body
    assert body["success"] is True and body["label"] == "alice@example.com"
    assert body["issuer"] == "push2fa-test"
    assert body["qr_code"].startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(body["qr_code"].split(",", 1)[1]).decode()
    assert 'width="250"' in svg
    uri = urlsplit(body["uri"])
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    query = dict(parse_qsl(uri.query))
    assert (query["digits"], query["period"], query["algorithm"]) == ("7", "30", "SHA1")
    secret = base64.b32decode(query["secret"] + "=" * (-len(query["secret"]) % 8))

    code = totp.code_at(secret, time.time())  # what an authenticator app would show
    status, verified = await call(
        http, "GET", f"{base_url}/protected/json/verify/{code}/{authy_id}", headers=key
    )
    assert (status, verified["token"]) == (200, "is valid")


async def test_secret_label_cannot_smuggle_a_second_secret_into_the_uri(
    http, base_url, key, enrol
) -> None:
    authy_id = await enrol()
    forged = "AAAAAAAAAAAAAAAA"
    status, body = await call(
        http,
        "POST",
        f"{base_url}/protected/json/users/{authy_id}/secret",
        headers=key,
        json={"label": f"x?secret={forged}&digits=6#"},
    )
    assert status == 200, body
    uri = urlsplit(body["uri"])
    pairs = parse_qsl(uri.query)
    assert [name for name, _ in pairs].count("secret") == 1
    assert dict(pairs)["secret"] != forged and dict(pairs)["digits"] == "7"
    assert uri.fragment == ""


async def test_secret_for_a_user_without_a_device_is_400_60050(http, base_url, key) -> None:
    phone_user = await _phone_user(http, base_url, key)
    status, body = await call(
        http, "POST", f"{base_url}/protected/json/users/{phone_user}/secret", headers=key
    )
    assert status == 400
    assert_error(body, "60050")


@pytest.mark.parametrize("params", [{"qr_size": "big"}, {"qr_size": 10}, {"label": "x" * 65}])
async def test_secret_with_bad_options_is_400(http, base_url, key, enrol, params) -> None:
    status, body = await call(
        http,
        "POST",
        f"{base_url}/protected/json/users/{await enrol()}/secret",
        headers=key,
        json=params,
    )
    assert status == 400
    assert_error(body, "60004")


async def test_secret_needs_the_api_key(http, base_url, enrol) -> None:
    status, body = await call(
        http, "POST", f"{base_url}/protected/json/users/{await enrol()}/secret"
    )
    assert (status, body["error_code"]) == (401, "60001")
    assert "uri" not in body and "qr_code" not in body


# --- the application ----------------------------------------------------------------------


async def test_app_details(http, base_url, key) -> None:
    status, body = await call(http, "GET", f"{base_url}/protected/json/app/details", headers=key)
    assert status == 200
    assert body["success"] is True and body["message"] == "Application information."
    assert body["app"]["name"] == "push2fa-test" and body["app"]["app_id"] == 424242
    assert body["app"]["sms_enabled"] is False


async def test_app_stats(http, base_url, key) -> None:
    status, body = await call(http, "GET", f"{base_url}/protected/json/app/stats", headers=key)
    assert status == 200 and body["success"] is True
    [month] = body["stats"]
    assert {"month", "year", "sms_count", "calls_count", "users_count"} <= set(month)


# --- the xml format -----------------------------------------------------------------------


async def test_xml_format_answers_as_rails_xml(http, base_url, key, enrol) -> None:
    authy_id = await enrol()
    url = f"{base_url}/protected/xml/users/{authy_id}/status"
    async with http.get(url, headers=key) as response:
        assert response.status == 200
        assert response.content_type == "application/xml"
        root = ElementTree.fromstring(await response.read())
    assert root.tag == "hash"
    assert root.findtext("status/authy-id") == str(authy_id)
    registered = root.find("status/registered")
    assert registered is not None and registered.attrib["type"] == "boolean"
    assert root.findtext("status/devices/device") == "android"
    assert root.findtext("success") == "true"


async def test_onetouch_xml_format(http, base_url, key, enrol) -> None:
    authy_id = await enrol()
    async with http.post(
        f"{base_url}/onetouch/xml/users/{authy_id}/approval_requests",
        headers=key,
        data={"message": "Log in?"},
    ) as response:
        assert response.status == 200
        uuid = ElementTree.fromstring(await response.read()).findtext("approval-request/uuid")
    async with http.get(f"{base_url}/onetouch/xml/approval_requests/{uuid}", headers=key) as r:
        root = ElementTree.fromstring(await r.read())
    assert root.findtext("approval-request/status") == "pending"


async def test_xml_cannot_be_injected_through_request_text(http, base_url, key, enrol) -> None:
    evil = '</message><status>approved</status><success type="boolean">true</success>&x;'
    uuid = await (await _pusher(http, base_url, key))(
        await enrol(), message=evil, hidden_details={"k": "<a>\x01</a>", "e": evil}
    )
    async with http.get(f"{base_url}/onetouch/xml/approval_requests/{uuid}", headers=key) as r:
        root = ElementTree.fromstring(await r.read())  # well-formed despite the text
    assert root.findtext("approval-request/status") == "pending"
    assert len(root.findall("approval-request/status")) == 1
    assert root.findtext("approval-request/hidden-details/k") == "<a>\ufffd</a>"
    assert root.findtext("approval-request/hidden-details/e") == evil


async def test_xml_errors_are_xml_too(http, base_url) -> None:
    async with http.get(f"{base_url}/protected/xml/users/1/status") as response:
        assert response.status == 401
        root = ElementTree.fromstring(await response.read())
    assert root.findtext("error-code") == "60001"
    assert root.findtext("errors/message") == "Invalid API key"


async def test_unknown_format_is_a_json_404(http, base_url, key) -> None:
    status, body = await call(http, "GET", f"{base_url}/protected/yaml/app/details", headers=key)
    assert status == 404
    assert_error(body, "60002")


# --- push2fa extension: withdrawing a request ----------------------------------------------


async def test_withdrawing_takes_a_pending_request_off_the_phone_once(
    http, base_url, key, enrol, push
) -> None:
    authy_id = await enrol()
    uuid = await push(authy_id)
    url = f"{base_url}/onetouch/json/approval_requests/{uuid}/withdraw"

    async with http.post(url, headers=key) as response:
        assert response.status == 200
        assert (await response.json())["withdrawn"] is True
    async with http.post(url, headers=key) as response:
        assert (await response.json())["withdrawn"] is False, "idempotent"
    async with http.get(f"{base_url}/api/devices/{authy_id}/requests") as response:
        assert await response.json() == []
    async with http.post(f"{base_url}/api/requests/{uuid}", json={"status": "approved"}) as r:
        assert r.status == 409, "a withdrawn request cannot be approved"
    async with http.get(
        f"{base_url}/onetouch/json/approval_requests/{uuid}", headers=key
    ) as response:
        assert (await response.json())["approval_request"]["status"] == "expired"


async def test_withdrawing_needs_the_key_and_an_existing_request(
    anonymous, http, base_url, key, enrol, push
) -> None:
    uuid = await push(await enrol())
    async with anonymous.post(
        f"{base_url}/onetouch/json/approval_requests/{uuid}/withdraw"
    ) as response:
        assert response.status == 401
    async with http.get(f"{base_url}/onetouch/json/approval_requests/{uuid}", headers=key) as r:
        assert (await r.json())["approval_request"]["status"] == "pending"
    for unknown in ("00000000-0000-1000-8000-000000000000", "x" * 300):
        async with http.post(
            f"{base_url}/onetouch/json/approval_requests/{unknown}/withdraw", headers=key
        ) as response:
            assert response.status == 404
