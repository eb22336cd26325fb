"""The phone page: enrol, see codes and pushes, answer them, with CSRF and a strict CSP."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest

from push2fa.pushservice.phone_session import COOKIE_NAME

from .conftest import registration_token


class PageAudit(HTMLParser):
    """Collects what a strict CSP would break: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.script_srcs: list[str] = []
        self.inline_script = False
        self.handlers: list[str] = []
        self.style_attributes = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.handlers += [name for name in names if name.startswith("on")]
        self.style_attributes += "style" in names
        if tag == "script":
            self._in_script = True
            if names.get("src"):
                self.script_srcs.append(names["src"] or "")
            else:
                self.inline_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script = True


@pytest.fixture
async def phone_http() -> Any:
    """A browser-like client: keeps cookies even for an IP-address host."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield session


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def open_page(phone_http, base_url, query: str = "") -> str:
    async with phone_http.get(f"{base_url}/phone{query}") as response:
        assert response.status == 200
        return str(await response.text())


async def enrol_by_link(phone_http, base_url, custom_user_id: str = "user-1") -> None:
    token = registration_token(custom_user_id)
    async with phone_http.get(
        f"{base_url}/phone", params={"token": token}, allow_redirects=False
    ) as response:
        assert response.status == 303
        assert response.headers["Location"].endswith("/_emulator/phone?done=enrolled")


async def test_page_renders_with_strict_csp_and_no_inline_script(phone_http, base_url) -> None:
    async with phone_http.get(f"{base_url}/phone") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        html = await response.text()
        headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    cookie = headers["Set-Cookie"]
    assert COOKIE_NAME in cookie and "HttpOnly" in cookie and "Path=/_emulator" in cookie
    assert "SameSite=Lax" in cookie

    audit = PageAudit()
    audit.feed(html)
    assert not audit.inline_script and not audit.handlers and not audit.style_attributes
    assert any(src.endswith("/phone.js") for src in audit.script_srcs)
    assert any("socket.io" in src for src in audit.script_srcs)
    assert 'name="token"' in html and "<label" in html
    assert 'aria-live="polite"' in html


async def test_own_script_is_served_from_self(phone_http, base_url) -> None:
    html = await open_page(phone_http, base_url)
    src = re.search(r'src="(/_emulator/phone/assets/phone\.js)"', html)
    assert src
    async with phone_http.get(base_url.removesuffix("/_emulator") + src.group(1)) as response:
        assert response.status == 200
        assert "javascript" in response.content_type
        assert "io(" in await response.text()


async def test_every_local_asset_of_the_page_is_served(phone_http, base_url) -> None:
    html = await open_page(phone_http, base_url)
    local = re.findall(r'(?:src|href)="(/[^"]*)"', html)
    assert len(local) >= 2  # our script and stylesheet, plus any installed vendor files
    root = base_url.removesuffix("/_emulator")
    for path in local:
        async with phone_http.get(root + path) as response:
            assert response.status == 200, path
            assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_enrol_by_link_shows_account_and_live_code(phone_http, http, base_url, key) -> None:
    await enrol_by_link(phone_http, base_url, "linked-user")
    html = await open_page(phone_http, base_url, "?done=enrolled")
    assert "Account added to this phone." in html
    assert "linked-user" in html
    assert re.search(r'class="fs-4 font-monospace totp-code"[^>]*>\d{7}<', html)
    async with http.get(
        f"{base_url}/protected/json/registrations/status",
        params={"custom_user_id": "linked-user"},
        headers=key,
    ) as response:
        assert (await response.json())["registration"]["status"] == "completed"


async def test_enrol_by_pasted_token_needs_csrf(phone_http, base_url) -> None:
    html = await open_page(phone_http, base_url)
    form = {"token": registration_token("pasted")}
    async with phone_http.post(f"{base_url}/phone/enrol", data=form) as response:
        assert response.status == 400
    async with phone_http.post(
        f"{base_url}/phone/enrol",
        data={**form, "csrf_token": csrf_of(html)},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
    assert "pasted" in await open_page(phone_http, base_url)


async def test_bad_token_shows_an_error_and_enrols_nothing(phone_http, base_url) -> None:
    token = registration_token("late", exp=1)
    async with phone_http.get(f"{base_url}/phone", params={"token": token}) as response:
        assert response.status == 400
        html = await response.text()
    assert "Could not add the account" in html and "expired" in html
    assert "No accounts yet" in html


async def test_pending_request_card_and_approval_by_plain_form(
    phone_http, base_url, http, push, receiver
) -> None:
    await enrol_by_link(phone_http, base_url)
    async with http.post(
        f"{base_url}/api/devices", json={"token": registration_token("user-1")}
    ) as response:
        authy_id = (await response.json())["authy_id"]
    uuid = await push(authy_id, details={"Browser": "Firefox <on Linux>"})
    html = await open_page(phone_http, base_url)
    card = re.search(rf'<article[^>]*data-uuid="{uuid}".*?</article>', html, re.S)
    assert card
    assert 'data-action="approve"' in card.group(0) and 'data-action="deny"' in card.group(0)
    assert "Firefox &lt;on Linux&gt;" in card.group(0)

    async with phone_http.post(
        f"{base_url}/phone/requests/{uuid}",
        data={"status": "approved", "csrf_token": csrf_of(html)},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        assert response.headers["Location"].endswith("done=approved")
    received = await receiver.next_request()
    assert f'"uuid": "{uuid}"' in received.body.decode()

    async with phone_http.post(
        f"{base_url}/phone/requests/{uuid}",
        data={"status": "denied", "csrf_token": csrf_of(html)},
        headers={"Accept": "application/json"},
    ) as response:
        assert response.status == 409
    assert len(receiver.requests) == 1


async def test_decision_by_fetch_gets_json(phone_http, base_url, http, push, receiver) -> None:
    await enrol_by_link(phone_http, base_url)
    async with http.post(
        f"{base_url}/api/devices", json={"token": registration_token("user-1")}
    ) as response:
        uuid = await push((await response.json())["authy_id"])
    html = await open_page(phone_http, base_url)
    async with phone_http.post(
        f"{base_url}/phone/requests/{uuid}",
        data={"status": "denied", "csrf_token": csrf_of(html)},
        headers={"Accept": "application/json"},
    ) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "denied"
    assert '"status": "denied"' in (await receiver.next_request()).body.decode()


async def test_another_phone_cannot_answer_or_reuse_csrf(
    phone_http, base_url, http, push, receiver
) -> None:
    await enrol_by_link(phone_http, base_url, "owner")
    async with http.post(
        f"{base_url}/api/devices", json={"token": registration_token("owner")}
    ) as response:
        uuid = await push((await response.json())["authy_id"])
    owner_csrf = csrf_of(await open_page(phone_http, base_url))

    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as stranger:
        stranger_csrf = csrf_of(await open_page(stranger, base_url))
        assert stranger_csrf != owner_csrf
        url = f"{base_url}/phone/requests/{uuid}"
        async with stranger.post(
            url, data={"status": "approved", "csrf_token": owner_csrf}
        ) as response:
            assert response.status == 400
        async with stranger.post(
            url,
            data={"status": "approved", "csrf_token": stranger_csrf},
            headers={"Accept": "application/json"},
        ) as response:
            assert response.status == 404
    assert receiver.requests == []


async def test_forget_account_removes_it_from_this_phone(phone_http, base_url) -> None:
    await enrol_by_link(phone_http, base_url, "forget-me")
    html = await open_page(phone_http, base_url)
    action = re.search(r'action="(/_emulator/phone/accounts/\d+/forget)"', html)
    assert action
    root = base_url.removesuffix("/_emulator")
    async with phone_http.post(
        root + action.group(1), data={"csrf_token": csrf_of(html)}
    ) as response:
        assert response.status == 200
        html = await response.text()
    assert "Account removed from this phone." in html and "forget-me" not in html


@pytest.mark.parametrize(
    "data", [{}, {"status": "maybe"}, {"status": "approved", "csrf_token": "x" * 5000}]
)
async def test_bad_phone_posts_are_4xx(phone_http, base_url, data) -> None:
    await open_page(phone_http, base_url)
    async with phone_http.post(f"{base_url}/phone/requests/nope", data=data) as response:
        assert 400 <= response.status < 500


# --- number matching and "this wasn't me" -------------------------------------------------


async def enrolled_push(phone_http, base_url, http, push, **params: Any) -> str:
    """Enrol this phone by the QR link, push a request to it; returns the request's uuid."""
    await enrol_by_link(phone_http, base_url)
    async with http.post(
        f"{base_url}/api/devices", json={"token": registration_token("user-1")}
    ) as response:
        authy_id = (await response.json())["authy_id"]
    return str(await push(authy_id, **params))


def card_of(html: str, uuid: str) -> str:
    card = re.search(rf'<article[^>]*data-uuid="{uuid}".*?</article>', html, re.S)
    assert card, "the request has no card on the phone page"
    return card.group(0)


def transaction_of(received: Any) -> dict[str, Any]:
    transaction: dict[str, Any] = json.loads(received.body)["approval_request"]["transaction"]
    return transaction


async def test_match_choices_show_as_number_buttons_instead_of_approve(
    phone_http, base_url, http, push
) -> None:
    uuid = await enrolled_push(
        phone_http,
        base_url,
        http,
        push,
        hidden_details={"match_choices": "17,42,83", "challenge": "secret-challenge-id"},
    )
    card = card_of(await open_page(phone_http, base_url), uuid)
    assert "Pick the number shown on your login screen" in card
    picks = re.findall(r'<button[^>]*data-action="pick"[^>]*data-code="(\d+)"[^>]*>\s*(\d+)<', card)
    assert picks == [("17", "17"), ("42", "42"), ("83", "83")]
    assert 'data-action="approve"' not in card
    assert 'data-action="deny"' in card and 'data-action="report"' in card
    assert "secret-challenge-id" not in card


async def test_picking_a_number_approves_with_that_number_as_reason(
    phone_http, base_url, http, push, receiver, key
) -> None:
    uuid = await enrolled_push(
        phone_http, base_url, http, push, hidden_details={"match_choices": "17,42,83"}
    )
    html = await open_page(phone_http, base_url)
    async with phone_http.post(
        f"{base_url}/phone/requests/{uuid}",
        data={"status": "approved", "reason": "42", "csrf_token": csrf_of(html)},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        assert response.headers["Location"].endswith("done=picked")
    transaction = transaction_of(await receiver.next_request())
    assert transaction["status"] == "approved" and transaction["reason"] == "42"
    async with http.get(
        f"{base_url}/onetouch/json/approval_requests/{uuid}", headers=key
    ) as response:
        status = (await response.json())["approval_request"]
    assert status["status"] == "approved" and status["reason"] == "42"
    assert "Your login screen shows whether it matched" in await open_page(
        phone_http, base_url, "?done=picked"
    )


async def test_report_denies_with_reason_reported(
    phone_http, base_url, http, push, receiver
) -> None:
    uuid = await enrolled_push(
        phone_http, base_url, http, push, hidden_details={"match_choices": "17,42,83"}
    )
    html = await open_page(phone_http, base_url)
    report_form = re.search(
        r'<form[^>]*>(?:(?!</form>).)*data-action="report".*?</form>', card_of(html, uuid), re.S
    )
    assert report_form
    fields = dict(re.findall(r'name="(status|reason)" value="([^"]*)"', report_form.group(0)))
    assert fields == {"status": "denied", "reason": "reported"}

    async with phone_http.post(
        f"{base_url}/phone/requests/{uuid}",
        data={**fields, "csrf_token": csrf_of(html)},
        headers={"Accept": "application/json"},
    ) as response:
        assert response.status == 200
        body = await response.json()
    assert body["status"] == "denied" and "Reported as not you" in body["message"]
    transaction = transaction_of(await receiver.next_request())
    assert transaction["status"] == "denied" and transaction["reason"] == "reported"


async def test_plain_deny_sends_no_reason(phone_http, base_url, http, push, receiver) -> None:
    uuid = await enrolled_push(
        phone_http, base_url, http, push, hidden_details={"match_choices": "17,42,83"}
    )
    html = await open_page(phone_http, base_url)
    async with phone_http.post(
        f"{base_url}/phone/requests/{uuid}",
        data={"status": "denied", "csrf_token": csrf_of(html)},
        allow_redirects=False,
    ) as response:
        assert response.headers["Location"].endswith("done=denied")
    transaction = transaction_of(await receiver.next_request())
    assert transaction["status"] == "denied" and transaction["reason"] == ""


@pytest.mark.parametrize(
    "hidden_details",
    [
        {},
        {"match_choices": ""},
        {"match_choices": "12,<b>,34"},
        {"match_choices": ",".join(str(n) for n in range(10, 30))},
    ],
    ids=["none", "empty", "not-numbers", "too-many"],
)
async def test_without_usable_choices_the_phone_offers_plain_approve(
    phone_http, base_url, http, push, hidden_details
) -> None:
    uuid = await enrolled_push(phone_http, base_url, http, push, hidden_details=hidden_details)
    card = card_of(await open_page(phone_http, base_url), uuid)
    assert 'data-action="approve"' in card and 'data-action="pick"' not in card
    assert 'data-action="deny"' in card and 'data-action="report"' in card


# --- forwarding headers and HSTS ----------------------------------------------------------


async def test_a_clients_forwarded_proto_is_not_believed(phone_http, base_url) -> None:
    """Without a trusted proxy, `X-Forwarded-Proto: https` from the client changes nothing:
    the page was served over http, so no HSTS and no Secure-only cookie it cannot keep."""
    async with phone_http.get(
        f"{base_url}/phone", headers={"X-Forwarded-Proto": "https"}
    ) as response:
        assert response.status == 200
        assert "Strict-Transport-Security" not in response.headers
        cookie = response.headers["Set-Cookie"]
    assert COOKIE_NAME in cookie and "Secure" not in cookie


async def test_behind_a_trusted_proxy_https_pages_send_hsts(tmp_path, database_url) -> None:
    from push2fa.web.app import create_app
    from push2fa.web.stack import build_asgi
    from tests.conftest import TEST_SECRET
    from tests.servers import serve_asgi

    app = create_app(
        {
            "testing": True,
            "secret_key": TEST_SECRET,
            "instance_path": str(tmp_path / "instance"),
            "database_url": database_url,
            "public_url": "https://login.example.com",
            "push_service": "emulator",
            "trusted_proxies": 1,
        }
    )
    async with serve_asgi(build_asgi(app)) as url, aiohttp.ClientSession() as http:
        async with http.get(
            f"{url}/_emulator/phone", headers={"X-Forwarded-Proto": "https"}
        ) as response:
            assert response.status == 200
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            assert "Secure" in response.headers["Set-Cookie"]
        async with http.get(f"{url}/_emulator/phone") as response:
            assert "Strict-Transport-Security" not in response.headers
