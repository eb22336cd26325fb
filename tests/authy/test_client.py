"""AuthyClient over real sockets, against a small server that answers as Authy does.

The server here is a stand-in for Authy's documented responses, including its failure
modes (error bodies, HTML 503s, hangs); the emulator's own tests cover the full protocol.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from push2fa.authy.client import AuthyClient, RegistrationStatus
from push2fa.authy.errors import AuthyError

API_KEY = "k3yV4lue-that-must-never-leak-0123"
PREFIX = "/_emulator"


@dataclass
class Seen:
    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"success": True})
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class CannedAuthy:
    """Answers each (method, path) with a canned reply and records what it was sent."""

    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], Reply] = {}
        self.seen: list[Seen] = []
        self.release = asyncio.Event()
        self.base_url = ""

    def reply(self, method: str, path: str, **reply: Any) -> None:
        self.replies[(method, PREFIX + path)] = Reply(**reply)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            Seen(
                method=request.method,
                path=request.path,
                raw_path=request.raw_path,
                query=dict(request.query),
                headers=request.headers,
                body=await request.read(),
            )
        )
        reply = self.replies.get((request.method, request.path))
        if reply is None:
            return web.json_response({"message": "no canned reply"}, status=599)
        if reply.hang:
            await self.release.wait()
        body = reply.body
        text = json.dumps(body) if isinstance(body, dict | list) else str(body)
        return web.Response(
            status=reply.status, text=text, content_type=reply.content_type, headers=reply.headers
        )


@pytest.fixture
async def authy() -> AsyncIterator[CannedAuthy]:
    canned = CannedAuthy()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", canned.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    canned.base_url = f"http://127.0.0.1:{port}{PREFIX}"
    try:
        yield canned
    finally:
        canned.release.set()
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def client(authy: CannedAuthy, session: aiohttp.ClientSession) -> AuthyClient:
    return AuthyClient(authy.base_url, API_KEY, session, timeout=5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- successful calls -------------------------------------------------------------------


async def test_create_approval_request_posts_json_with_the_key_header(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "POST",
        "/onetouch/json/users/1234/approval_requests",
        body={
            "approval_request": {"uuid": "dda2c400-bc43-0135-d7be-1285ca17e122"},
            "success": True,
        },
    )

    uuid = await client.create_approval_request(
        1234,
        "Log in to push2fa?",
        details={"Browser": "Firefox on Linux"},
        hidden_details={"ip": "203.0.113.9"},
        seconds_to_expire=120,
        logos=[{"res": "default", "url": "https://push2fa.example/logo.png"}],
    )

    assert uuid == "dda2c400-bc43-0135-d7be-1285ca17e122"
    [request] = authy.seen
    assert request.path == PREFIX + "/onetouch/json/users/1234/approval_requests"
    assert request.headers["X-Authy-API-Key"] == API_KEY
    assert request.headers["User-Agent"].startswith("push2fa/")
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.json() == {
        "message": "Log in to push2fa?",
        "details": {"Browser": "Firefox on Linux"},
        "hidden_details": {"ip": "203.0.113.9"},
        "seconds_to_expire": 120,
        "logos": [{"res": "default", "url": "https://push2fa.example/logo.png"}],
    }


async def test_create_approval_request_caps_the_message_and_omits_unset_options(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "POST",
        "/onetouch/json/users/7/approval_requests",
        body={"approval_request": {"uuid": "u-1"}, "success": True},
    )

    await client.create_approval_request(7, "x" * 250)

    assert authy.seen[0].json() == {"message": "x" * 200}


@pytest.mark.parametrize(
    "options",
    [
        {"logos": [{"res": "low", "url": "https://x.example/l.png"}]},  # no default logo
        {"logos": [{"res": "huge", "url": "https://x.example/l.png"}]},
        {"logos": [{"res": "default", "url": "https://x.example/" + "l" * 500}]},
        {"details": {"k": "v" * 201}},
        {"details": {"k": 1}},
        {"details": {"k" * 21: "v"}},  # Authy documents 20 characters for a details key
        {"details": {"Browser]": "v"}},  # a GET callback could not carry it back
        {"hidden_details": {"[x": "v"}},
        {"details": {"12": "v"}},  # read back as an array index
        {"logos": [{"res": "default", "url": "https://x.example/l.png"}] * 2},
        {"seconds_to_expire": -1},
        {"seconds_to_expire": True},
    ],
)
async def test_create_approval_request_rejects_bad_options_without_sending(
    authy: CannedAuthy, client: AuthyClient, options: dict[str, Any]
) -> None:
    with pytest.raises(AuthyError) as caught:
        await client.create_approval_request(7, "Log in?", **options)

    assert caught.value.retryable is False
    assert caught.value.status is None
    assert authy.seen == []


async def test_approval_request_status_reads_the_status_and_keeps_the_raw_object(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    approval = {
        "_app_serial_id": 46113,
        "created_at": "2017-02-10T01:09:52Z",
        "processed_at": None,
        "seconds_to_expire": 86400,
        "status": "approved",
        "uuid": "8d031630-d15b-0134-b0a8-0a77bbe8093e",
        "hidden_details": {"ip": "203.0.113.9"},
    }
    authy.reply(
        "GET",
        "/onetouch/json/approval_requests/8d031630-d15b-0134-b0a8-0a77bbe8093e",
        body={"approval_request": approval, "success": True},
    )

    status = await client.approval_request_status("8d031630-d15b-0134-b0a8-0a77bbe8093e")

    assert status.uuid == "8d031630-d15b-0134-b0a8-0a77bbe8093e"
    assert status.status == "approved"
    assert status.raw == approval
    assert authy.seen[0].headers["X-Authy-API-Key"] == API_KEY


async def test_approval_request_uuid_cannot_escape_its_path_segment(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    with pytest.raises(AuthyError):
        await client.approval_request_status("..")
    authy.reply("GET", "/onetouch/json/approval_requests/a/b", body={"success": True})

    with pytest.raises(AuthyError):
        await client.approval_request_status("a/b")

    assert [request.raw_path for request in authy.seen] == [
        PREFIX + "/onetouch/json/approval_requests/a%2Fb"
    ]


@pytest.mark.parametrize(
    ("registration", "expected"),
    [
        ({"status": "pending"}, RegistrationStatus("pending", None)),
        ({"status": "completed", "authy_id": 42}, RegistrationStatus("completed", 42)),
        ({"status": "completed", "authy_id": "42"}, RegistrationStatus("completed", 42)),
        ({"status": "expired"}, RegistrationStatus("expired", None)),
    ],
)
async def test_registration_status_reports_progress(
    authy: CannedAuthy,
    client: AuthyClient,
    registration: dict[str, Any],
    expected: RegistrationStatus,
) -> None:
    authy.reply(
        "GET",
        "/protected/json/registrations/status",
        body={"registration": registration, "success": True},
    )

    status = await client.registration_status("user-17")

    assert status == expected
    assert status.completed is (expected.status == "completed")
    assert authy.seen[0].query == {"custom_user_id": "user-17"}


async def test_delete_user_posts_to_the_delete_path(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "POST",
        "/protected/json/users/9/delete",
        body={"message": "User removed from application", "success": True},
    )

    assert await client.delete_user(9) is True

    assert [(request.method, request.path) for request in authy.seen] == [
        ("POST", PREFIX + "/protected/json/users/9/delete")
    ]


async def test_delete_user_answered_200_with_success_false_is_not_an_error(
    authy: CannedAuthy, client: AuthyClient, caplog: pytest.LogCaptureFixture
) -> None:
    # The official clients judge by the HTTP status alone (python User.ok(), ruby ok?).
    authy.reply(
        "POST",
        "/protected/json/users/9/delete",
        body={"message": "User could not be removed", "success": False},
    )

    with caplog.at_level(logging.WARNING, logger="push2fa.authy.client"):
        assert await client.delete_user(9) is False

    assert "User could not be removed" in caplog.text


async def test_verify_token_accepts_a_valid_token_with_success_as_a_string(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "GET",
        "/protected/json/verify/0123456/7",
        body={"message": "Token is valid.", "token": "is valid", "success": "true"},
    )

    assert await client.verify_token(7, "0123456") is True
    assert authy.seen[0].query == {"force": "true"}


@pytest.mark.parametrize(("code", "message"), [("60020", "Token is invalid"), ("60019", "reused")])
async def test_verify_token_is_false_for_an_invalid_or_reused_token(
    authy: CannedAuthy, client: AuthyClient, code: str, message: str
) -> None:
    authy.reply(
        "GET",
        "/protected/json/verify/654321/7",
        status=401,
        body={
            "message": message,
            "token": "is invalid",
            "success": False,
            "errors": {"message": message},
            "error_code": code,
        },
    )

    assert await client.verify_token(7, "654321") is False


async def test_verify_token_is_false_for_a_401_without_an_error_code(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    # python's Token.ok() needs a 200: any other 401 is a refused token, not an outage.
    authy.reply(
        "GET",
        "/protected/json/verify/654321/7",
        status=401,
        body={"message": "Token is invalid", "token": "is invalid", "success": False},
    )

    assert await client.verify_token(7, "654321") is False


async def test_verify_token_still_raises_for_an_invalid_api_key(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "GET",
        "/protected/json/verify/654321/7",
        status=401,
        body={"message": "Invalid API key", "success": False, "error_code": "60001"},
    )

    with pytest.raises(AuthyError) as caught:
        await client.verify_token(7, "654321")

    assert caught.value.error_code == "60001"


async def test_verify_token_raises_for_other_errors(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "GET",
        "/protected/json/verify/654321/7",
        status=404,
        body={"message": "User not found.", "success": False, "error_code": "60026"},
    )

    with pytest.raises(AuthyError) as caught:
        await client.verify_token(7, "654321")

    assert caught.value.error_code == "60026"


@pytest.mark.parametrize("token", ["12345", "1234567890123", "12345a", "١٢٣٤٥٦", "123456\n", ""])
async def test_verify_token_rejects_malformed_tokens_without_a_request(
    authy: CannedAuthy, client: AuthyClient, token: str
) -> None:
    with pytest.raises(AuthyError) as caught:
        await client.verify_token(7, token)

    assert caught.value.retryable is False
    assert authy.seen == []


# --- failures -----------------------------------------------------------------------------


async def test_invalid_api_key_is_a_permanent_error(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "GET",
        "/onetouch/json/approval_requests/u-1",
        status=401,
        body={
            "error_code": "60001",
            "message": "Invalid API key",
            "errors": {"message": "Invalid API key"},
            "success": False,
        },
    )

    with pytest.raises(AuthyError) as caught:
        await client.approval_request_status("u-1")

    assert caught.value.error_code == "60001"
    assert caught.value.status == 401
    assert caught.value.retryable is False
    assert caught.value.message == "Invalid API key"


async def test_unknown_approval_request_is_404_60049(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "GET",
        "/onetouch/json/approval_requests/missing",
        status=404,
        body={
            "message": "Approval request not found: missing",
            "success": False,
            "errors": {},
            "error_code": "60049",
        },
    )

    with pytest.raises(AuthyError) as caught:
        await client.approval_request_status("missing")

    assert (caught.value.status, caught.value.error_code) == (404, "60049")
    assert caught.value.retryable is False
    assert "Approval request not found" in str(caught.value)


async def test_error_body_is_parsed_whatever_the_content_type(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "POST",
        "/protected/json/users/2/devices/3/remove",
        status=400,
        content_type="text/html",
        body=json.dumps({"message": "User was not valid", "success": False, "error_code": 60027}),
    )

    with pytest.raises(AuthyError) as caught:
        await client.remove_device(2, 3)

    assert caught.value.error_code == "60027"
    assert caught.value.status == 400


async def test_html_503_is_retryable(authy: CannedAuthy, client: AuthyClient) -> None:
    authy.reply(
        "GET",
        "/onetouch/json/approval_requests/u-1",
        status=503,
        content_type="text/html",
        body="<html><body><h1>503 Service Unavailable</h1></body></html>",
    )

    with pytest.raises(AuthyError) as caught:
        await client.approval_request_status("u-1")

    assert caught.value.status == 503
    assert caught.value.retryable is True
    assert caught.value.error_code is None
    assert "<html>" not in str(caught.value)


async def test_rate_limiting_is_retryable(authy: CannedAuthy, client: AuthyClient) -> None:
    authy.reply(
        "GET",
        "/onetouch/json/approval_requests/u-1",
        status=429,
        body={"message": "Too many requests", "success": False},
    )

    with pytest.raises(AuthyError) as caught:
        await client.approval_request_status("u-1")

    assert (caught.value.status, caught.value.retryable) == (429, True)


async def test_invalid_json_on_200_is_an_error(authy: CannedAuthy, client: AuthyClient) -> None:
    authy.reply(
        "POST",
        "/onetouch/json/users/7/approval_requests",
        body="{not json",
        content_type="text/plain",
    )

    with pytest.raises(AuthyError) as caught:
        await client.create_approval_request(7, "Log in?")

    assert caught.value.status == 200
    assert caught.value.retryable is False


async def test_success_false_on_200_is_an_error(authy: CannedAuthy, client: AuthyClient) -> None:
    authy.reply(
        "GET",
        "/protected/json/users/2/devices",
        body={"message": "Something odd", "success": False, "error_code": "60002"},
    )

    with pytest.raises(AuthyError) as caught:
        await client.list_devices(2)

    assert caught.value.error_code == "60002"


async def test_a_200_without_the_expected_fields_is_an_error(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply("POST", "/onetouch/json/users/7/approval_requests", body={"success": True})

    with pytest.raises(AuthyError):
        await client.create_approval_request(7, "Log in?")


async def test_redirects_are_not_followed_so_the_key_stays_put(
    authy: CannedAuthy, client: AuthyClient
) -> None:
    authy.reply(
        "GET",
        "/onetouch/json/approval_requests/u-1",
        status=302,
        headers={"Location": "/elsewhere"},
        body="",
        content_type="text/plain",
    )

    with pytest.raises(AuthyError) as caught:
        await client.approval_request_status("u-1")

    assert caught.value.status == 302
    assert [request.path for request in authy.seen] == [
        PREFIX + "/onetouch/json/approval_requests/u-1"
    ]


async def test_timeout_is_retryable_and_has_no_status(
    authy: CannedAuthy, session: aiohttp.ClientSession
) -> None:
    authy.reply("GET", "/onetouch/json/approval_requests/u-1", hang=True)
    impatient = AuthyClient(authy.base_url, API_KEY, session, timeout=0.05)

    with pytest.raises(AuthyError) as caught:
        await impatient.approval_request_status("u-1")

    assert caught.value.status is None
    assert caught.value.retryable is True


async def test_connection_refused_is_retryable(session: aiohttp.ClientSession) -> None:
    nobody = AuthyClient(f"http://127.0.0.1:{_free_port()}", API_KEY, session, timeout=5)

    with pytest.raises(AuthyError) as caught:
        await nobody.approval_request_status("u-1")

    assert caught.value.status is None
    assert caught.value.retryable is True


async def test_the_api_key_never_appears_in_errors_or_logs(
    authy: CannedAuthy, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = AuthyClient(authy.base_url, API_KEY, session, timeout=5)
    authy.reply(
        "GET",
        "/onetouch/json/approval_requests/echo",
        status=401,
        body={"message": f"Invalid API key {API_KEY}", "success": False, "error_code": API_KEY},
    )
    authy.reply(
        "GET",
        "/onetouch/json/approval_requests/html",
        status=503,
        content_type="text/html",
        body=f"<p>key was {API_KEY}</p>",
    )
    errors: list[AuthyError] = []

    for uuid in ("echo", "html"):
        with pytest.raises(AuthyError) as caught:
            await client.approval_request_status(uuid)
        errors.append(caught.value)
    with pytest.raises(AuthyError) as caught:
        await AuthyClient(
            f"http://127.0.0.1:{_free_port()}", API_KEY, session
        ).approval_request_status("x")
    errors.append(caught.value)

    for error in errors:
        assert API_KEY not in str(error)
        assert API_KEY not in repr(error)
        assert API_KEY not in error.message
        assert API_KEY not in str(error.error_code)
    assert caplog.records, "the client should log each request"
    assert API_KEY not in caplog.text
    for record in caplog.records:
        assert API_KEY not in record.getMessage()
    assert API_KEY not in repr(client)


async def test_logs_name_the_route_but_never_the_token(
    authy: CannedAuthy, client: AuthyClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="push2fa.authy.client")
    authy.reply(
        "GET",
        "/protected/json/verify/987654/7",
        body={"message": "Token is valid.", "token": "is valid", "success": "true"},
    )

    await client.verify_token(7, "987654")

    assert "/protected/json/verify/{token}/{authy_id}" in caplog.text
    assert "987654" not in caplog.text


@pytest.mark.parametrize(
    ("base_url", "api_key"),
    [
        ("api.authy.com", API_KEY),
        ("ftp://api.authy.com", API_KEY),
        ("https://api.authy.com/?x=1", API_KEY),
        ("https://api.authy.com", ""),
        ("https://api.authy.com", "key\r\nX-Injected: 1"),
        ("https://api.authy.com", "clé"),
    ],
)
async def test_client_refuses_unusable_configuration(
    session: aiohttp.ClientSession, base_url: str, api_key: str
) -> None:
    with pytest.raises(ValueError) as caught:
        AuthyClient(base_url, api_key, session)

    assert not api_key or api_key not in str(caught.value)
