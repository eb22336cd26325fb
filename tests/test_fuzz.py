"""Random input, over real sockets, on every route: never a 5xx, and nothing changes.

Hypothesis writes requests for every rule of `app.url_map` (whatever the path arguments),
with any method, random query strings, forwarding and other headers, bodies (forms,
JSON, bytes) and cookies: junk, and cookies validly signed with the test secret that carry
random contents (the session, the login cookie), as an attacker who knows the secret of a
test deployment, or an older release, could send. The served stack is the real one
(Hypercorn, the proxy middleware with one trusted hop, Socket.IO, the in-process push
service) with a logged-in user and a pending login challenge in the database.

Properties: no answer is a 5xx; and unless the request carried this session's real CSRF
token (then a form may legitimately change something), every table is the same afterwards,
except the audit log, which records rejections (bounded, see test_audit_budget.py), and the
user's `last_seen`, which moves on any visit.

`PUSH2FA_FUZZ_SURVEY=1` records 5xx instead of failing at the first, and prints how many
of how many inputs gave one: the before/after figure for the robustness work.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer
from quart import Quart
from quart_auth import QuartAuth
from sqlalchemy import Table

from push2fa.authy import signature
from push2fa.domain.login_flow import SESSION_KEY
from push2fa.models import LoginChallenge, User, utcnow
from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.conftest import TEST_SECRET, DatabaseFactory, csrf_from
from tests.servers import reserve_listener, serve_asgi, url_of
from tests.snapshots import Snapshot, changed_tables, snapshot
from tests.web.auth.mailbox import background_done

SURVEY = os.environ.get("PUSH2FA_FUZZ_SURVEY") == "1"
EXAMPLES = int(os.environ.get("PUSH2FA_FUZZ_EXAMPLES", "150"))
# Written by every rejection (bounded elsewhere) and by every visit, respectively.
NOT_COMPARED = frozenset({"audit_events", "users.last_seen"})
CHALLENGE_ID = "fuzz-challenge-public-id-0123456789abcdefghij"[:43]
PASSWORD = "correct horse battery"

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class FuzzSite:
    url: str
    app: Quart
    http: aiohttp.ClientSession
    session_cookie: str  # alice's real session: logged in, with a CSRF secret
    auth_cookie: str
    csrf_token: str
    inputs: int = 0
    server_errors: list[str] = field(default_factory=list)

    def sign_session(self, data: dict[str, Any]) -> str:
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        assert serializer is not None
        return str(serializer.dumps(data))

    def sign_auth(self, auth_id: str) -> str:
        extension: QuartAuth = self.app.extensions["QUART_AUTH"][0]
        return str(extension.dump_token(auth_id, app=self.app))

    async def state(self) -> Snapshot:
        return await snapshot(self.app.extensions["push2fa"].db.engine, skip=NOT_COMPARED)

    def saw(self, request: dict[str, Any], status: int) -> None:
        self.inputs += 1
        if status >= 500:
            shown = f"{request['method']} {request['path'][:120]} -> {status}"
            self.server_errors.append(shown)
            if SURVEY:
                print(f"\n5xx: {request!r:.2000}")
            else:
                raise AssertionError(f"{shown}: {request!r:.2000}")


async def _seed(site_url: str, app: Quart) -> tuple[str, str, str]:
    """alice registered, logged in, with push on and a login challenge pending."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:

        async def form(path: str, data: dict[str, str]) -> None:
            page = await (await http.get(site_url + path)).text()
            data = {"csrf_token": csrf_from(page), **data}
            async with http.post(site_url + path, data=data) as resp:
                assert resp.status < 400, (path, resp.status)

        await form(
            "/auth/register",
            {
                "username": "alice",
                "email": "alice@example.com",
                "password": PASSWORD,
                "password2": PASSWORD,
            },
        )
        await form("/auth/login", {"login": "alice", "password": PASSWORD})
        token = csrf_from(await (await http.get(site_url + "/profile/edit")).text())
        cookies = {c.key: c.value for c in http.cookie_jar}
    async with app.extensions["push2fa"].db.session() as db:
        alice = (await db.execute(User.__table__.select())).first()
        assert alice is not None
        await db.execute(cast(Table, User.__table__).update().values(authy_id=424242))
        db.add(
            LoginChallenge(
                public_id=CHALLENGE_ID,
                user_id=alice.id,
                authy_id=424242,
                provider_uuid="fuzz-uuid",
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        await db.commit()
    return cookies["push2fa_session"], cookies["push2fa_auth"], token


@pytest.fixture(scope="module")
async def fuzz_site(databases: DatabaseFactory, tmp_path_factory) -> AsyncIterator[FuzzSite]:
    listener = reserve_listener()
    url = url_of(listener)
    app = create_app(
        {
            "testing": True,
            "secret_key": TEST_SECRET,
            "instance_path": str(tmp_path_factory.mktemp("fuzz") / "instance"),
            "database_url": await databases.new_url(),
            "bcrypt_rounds": 4,
            "public_url": url,
            "trusted_proxies": 1,
            "rate_limits": False,  # reach the views, not the limiter
            "status_poll_delay": 60.0,
            "log_level": "WARNING",
        }
    )
    async with serve_asgi(build_asgi(app), listener=listener):
        session_cookie, auth_cookie, token = await _seed(url, app)
        await background_done(app)  # the new-login mail: its write is not the fuzz's
        async with aiohttp.ClientSession(
            cookie_jar=aiohttp.DummyCookieJar(), timeout=aiohttp.ClientTimeout(total=30)
        ) as http:
            site = FuzzSite(url, app, http, session_cookie, auth_cookie, token)
            yield site
            print(
                f"\nfuzz: {len(site.server_errors)} 5xx over {site.inputs} inputs",
                *sorted(set(site.server_errors))[:40],
                sep="\n  ",
            )


# --- strategies ------------------------------------------------------------------------------

HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=60,
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.just("9" * 30),
    st.just("²"),
    st.just("٣"),
)
WORDS = st.one_of(st.text(max_size=30), NUMBERS, st.text("a/.%", min_size=200, max_size=3000))
FORWARDED_FOR = st.one_of(
    HEADER_TEXT,
    st.lists(st.one_of(st.ip_addresses().map(str), HEADER_TEXT), max_size=4).map(", ".join),
)
HEADER_VALUES = {
    "X-Forwarded-For": FORWARDED_FOR,
    "X-Forwarded-Proto": st.one_of(st.sampled_from(["http", "https", "ftp", ""]), HEADER_TEXT),
    "X-Forwarded-Host": HEADER_TEXT,
    "X-Forwarded-Port": st.one_of(NUMBERS, HEADER_TEXT),
    "X-Forwarded-Prefix": HEADER_TEXT,
    "Forwarded": HEADER_TEXT,
    "X-Real-IP": HEADER_TEXT,
    "User-Agent": HEADER_TEXT,
    "Accept-Language": HEADER_TEXT,
    "Accept": HEADER_TEXT,
    "Referer": HEADER_TEXT,
    "Origin": HEADER_TEXT,
    "Range": st.one_of(st.just("bytes=0-1,5-3"), HEADER_TEXT),
    "If-Modified-Since": HEADER_TEXT,
    "If-None-Match": HEADER_TEXT,
    "Authorization": HEADER_TEXT,
    "X-Authy-Signature": HEADER_TEXT,
    "X-Authy-Signature-Nonce": st.one_of(NUMBERS, st.just(str(time.time())), HEADER_TEXT),
    "Host": st.one_of(st.just("127.0.0.1"), HEADER_TEXT),
}
HEADERS = st.dictionaries(st.sampled_from(sorted(HEADER_VALUES)), st.just(""), max_size=6).flatmap(
    lambda names: st.fixed_dictionaries({name: HEADER_VALUES[name] for name in names})
)
JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=False),
        st.text(max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
SESSION_KEYS = st.sampled_from([SESSION_KEY, "fresh_2fa_at", "csrf", "_flashes", "_permanent"])
FORM_FIELDS = [
    "csrf_token",
    "login",
    "password",
    "password2",
    "username",
    "email",
    "about_me",
    "code",
    "action",
    "trust",
    "remember",
    "next",
    "current",
]
PATH_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _cookies(site: FuzzSite) -> st.SearchStrategy[dict[str, str]]:
    session = st.one_of(
        st.just(site.session_cookie),
        st.dictionaries(st.one_of(SESSION_KEYS, st.text(max_size=8)), JSONISH, max_size=4).map(
            site.sign_session
        ),
        st.fixed_dictionaries(
            {SESSION_KEY: st.sampled_from([CHALLENGE_ID, 7, [CHALLENGE_ID]])}
        ).map(site.sign_session),
        HEADER_TEXT,
    )
    auth = st.one_of(
        st.just(site.auth_cookie),
        st.one_of(NUMBERS, st.text(max_size=30))
        .flatmap(lambda user: st.one_of(NUMBERS, st.just("0")).map(lambda epoch: f"{user}:{epoch}"))
        .map(site.sign_auth),
        HEADER_TEXT,
    )
    trusted = st.one_of(NUMBERS.map(lambda n: f"{n}.secret"), HEADER_TEXT)
    return st.fixed_dictionaries(
        {},
        optional={"push2fa_session": session, "push2fa_auth": auth, "push2fa_trusted": trusted},
    )


def _bodies(site: FuzzSite) -> st.SearchStrategy[tuple[bytes | None, str | None, bool]]:
    """(body, content type, whether it carries alice's real CSRF token)."""
    token = st.one_of(st.just(site.csrf_token), HEADER_TEXT)
    values = st.one_of(WORDS, token)
    form = st.dictionaries(st.sampled_from(FORM_FIELDS), values, max_size=6).map(
        lambda data: (
            urlencode(data).encode(),
            "application/x-www-form-urlencoded",
            data.get("csrf_token") == site.csrf_token,
        )
    )
    raw = st.tuples(
        st.binary(max_size=300),
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/json",
                "multipart/form-data",
                "text/plain",
                "multipart/form-data; boundary=x",
            ]
        ),
        st.just(False),
    )
    as_json = JSONISH.map(lambda data: (json.dumps(data).encode(), "application/json", False))
    return st.one_of(st.just((None, None, False)), form, raw, as_json)


@st.composite
def requests(draw: st.DrawFn, site: FuzzSite) -> dict[str, Any]:
    rule = draw(st.sampled_from(sorted(site.app.url_map.iter_rules(), key=lambda r: r.rule)))
    path = PATH_ARGUMENT.sub(
        lambda _: quote(draw(WORDS), safe="/" if "path:" in rule.rule else ""), rule.rule
    )
    methods = sorted((rule.methods or set()) | {"GET", "POST", "PUT", "DELETE", "PATCH"})
    query = draw(st.dictionaries(st.sampled_from(["next", "token", "q", "x"]), WORDS, max_size=3))
    body, content_type, real_token = draw(_bodies(site))
    headers = draw(HEADERS)
    if content_type is not None:
        headers.setdefault("Content-Type", content_type)
    cookies = draw(_cookies(site))
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return {
        "method": draw(st.sampled_from(methods)),
        "path": path + ("?" + urlencode(query) if query else ""),
        "headers": headers,
        "body": body,
        "may_change": real_token and cookies.get("push2fa_session") == site.session_cookie,
    }


async def _send(site: FuzzSite, request: dict[str, Any]) -> int:
    async with site.http.request(
        request["method"],
        site.url + request["path"],
        headers=request["headers"],
        data=request["body"],
        allow_redirects=False,
        skip_auto_headers={"Content-Type"},
    ) as response:
        await response.read()
        return response.status


# --- the properties ------------------------------------------------------------------------


def test_every_rule_of_the_url_map_is_fuzzed(app: Quart):
    """The strategy draws from the live url_map: no route can be added and left out."""
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert {"/webhooks/authy", "/static/<path:filename>", "/auth/login"} <= rules


@given(data=st.data())
@FUZZ_SETTINGS
async def test_random_requests_never_get_a_5xx_nor_change_anything(fuzz_site: FuzzSite, data):
    request = data.draw(requests(fuzz_site))
    await background_done(fuzz_site.app)  # an earlier accepted form's mail, say
    before = await fuzz_site.state()

    status = await _send(fuzz_site, request)

    fuzz_site.saw(request, status)
    if not request["may_change"] and status < 500:
        await background_done(fuzz_site.app)
        after = await fuzz_site.state()
        assert changed_tables(before, after) == [], (request, status)


@given(body=JSONISH, method=st.sampled_from(["POST", "GET"]))
@FUZZ_SETTINGS
async def test_validly_signed_webhooks_with_random_bodies_never_get_a_5xx(
    fuzz_site: FuzzSite, body: Any, method: str
):
    """After a valid signature, any JSON (or query) at all: a 4xx, or a 200 for a callback
    about no known request, and a rejected one changes nothing."""
    settings_ = fuzz_site.app.extensions["push2fa"].settings
    nonce = f"{time.time():.6f}"
    params: Any = body if method == "POST" else urlencode({"q": json.dumps(body)}).encode()
    headers = {"X-Authy-Signature-Nonce": nonce}
    if method == "POST":
        headers["Content-Type"] = "application/json"
        payload = json.dumps(body).encode()
        path = "/webhooks/authy"
    else:
        payload = None
        path = "/webhooks/authy?" + params.decode()
    try:
        headers["X-Authy-Signature"] = signature.sign(
            settings_.authy_api_key, nonce, method, settings_.webhook_url, params
        )
    except (ValueError, TypeError):
        headers["X-Authy-Signature"] = "unsignable"
    before = await fuzz_site.state()

    request = {"method": method, "path": path, "headers": headers, "body": payload}
    status = await _send(fuzz_site, request)

    fuzz_site.saw(request, status)
    if status >= 400 and status < 500:
        assert changed_tables(before, await fuzz_site.state()) == [], (body, status)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"authy_id": 424242, "uuid": "fuzz-uuid", "status": ["approved"]}, 400),
        ({"authy_id": 2**64, "uuid": "fuzz-uuid", "status": "approved"}, 400),
        ({"authy_id": "9" * 30, "uuid": "fuzz-uuid", "status": "approved"}, 400),
        ({"authy_id": "²", "uuid": "fuzz-uuid", "status": "approved"}, 400),
        # The reason is optional context: a list there is no reason (the uuid is unknown).
        ({"authy_id": 424242, "uuid": "other", "status": "denied", "approval_request": []}, 200),
    ],
    ids=["list-for-string", "past-2^63", "30-digit-string", "superscript", "list-for-object"],
)
async def test_signed_webhooks_of_the_wrong_shape_are_no_error(
    fuzz_site: FuzzSite, body: Any, expected: int
):
    settings_ = fuzz_site.app.extensions["push2fa"].settings
    nonce = f"{time.time():.6f}"
    sig = signature.sign(settings_.authy_api_key, nonce, "POST", settings_.webhook_url, body)
    headers = {
        "X-Authy-Signature": sig,
        "X-Authy-Signature-Nonce": nonce,
        "Content-Type": "application/json",
    }
    before = await fuzz_site.state()

    status = await _send(
        fuzz_site,
        {
            "method": "POST",
            "path": "/webhooks/authy",
            "headers": headers,
            "body": json.dumps(body).encode(),
        },
    )

    assert status == expected
    if expected == 400:
        assert changed_tables(before, await fuzz_site.state()) == []


@pytest.mark.parametrize(
    ("path", "headers", "body"),
    [
        (
            "/webhooks/authy",
            {
                "Content-Type": "application/json",
                "X-Authy-Signature": "x",
                "X-Authy-Signature-Nonce": "1",
            },
            b"[" * 100_000 + b"]" * 100_000,
        ),
        ("/static/" + "a" * 5000, {}, None),
        ("/static/" + "a" * 300 + ".css", {}, None),
        ("/", {"X-Forwarded-For": "[::1"}, None),
        (
            "/",
            {"X-Forwarded-For": ", , ,", "X-Forwarded-Proto": "\u00e9", "Forwarded": "for="},
            None,
        ),
        ("/auth/2fa/resend", {"X-Forwarded-Host": "."}, None),
        ("/", {"Host": "."}, None),
        ("/account/trusted/" + "9" * 30 + "/revoke", {}, None),
        ("/account/trusted/%C2%B2/revoke", {}, None),
    ],
    ids=[
        "deep-json",
        "long-static",
        "long-static-segment",
        "bad-xff",
        "odd-forwarding",
        "forwarded-host-dot",
        "host-dot",
        "30-digit-route-id",
        "superscript-route-id",
    ],
)
async def test_known_anonymous_5xx_are_no_error(fuzz_site: FuzzSite, path: str, headers, body):
    status = await _send(
        fuzz_site,
        {"method": "POST" if body else "GET", "path": path, "headers": headers, "body": body},
    )

    assert status < 500


async def test_a_30_digit_trusted_browser_id_after_the_right_password_is_no_error(
    fuzz_site: FuzzSite,
):
    """The trusted-browser cookie is read after the password is right: its id is untrusted."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await (await http.get(fuzz_site.url + "/auth/login")).text()
        http.cookie_jar.update_cookies({"push2fa_trusted": "9" * 30 + ".secret"})
        async with http.post(
            fuzz_site.url + "/auth/login",
            data={"csrf_token": csrf_from(page), "login": "alice", "password": PASSWORD},
            allow_redirects=False,
        ) as response:
            assert response.status < 500


async def test_a_signed_login_cookie_with_a_30_digit_id_is_anonymous(fuzz_site: FuzzSite):
    cookie = fuzz_site.sign_auth("9" * 30 + ":0")

    status = await _send(
        fuzz_site,
        {
            "method": "GET",
            "path": "/",
            "headers": {"Cookie": f"push2fa_auth={cookie}"},
            "body": None,
        },
    )

    assert status == 200


TOKEN_SALTS = {"/auth/reset/": "push2fa password reset", "/account/report/": "push2fa report"}
ALICE_ID = 1


@given(
    prefix=st.sampled_from(sorted(TOKEN_SALTS)),
    payload=st.one_of(
        JSONISH,
        st.fixed_dictionaries(
            {"u": JSONISH | NUMBERS | st.integers(min_value=2**31)},
            optional={"p": JSONISH, "j": JSONISH},
        ),
    ),
    method=st.sampled_from(["GET", "POST"]),
)
@FUZZ_SETTINGS
async def test_validly_signed_links_with_random_contents_never_get_a_5xx(
    fuzz_site: FuzzSite, prefix: str, payload: Any, method: str
):
    """Reset and "this wasn't me" links signed with the right key, carrying anything:
    a 4xx or a redirect, never a 5xx (a real report for alice is left out: it would
    legitimately end her session for the rest of this module)."""
    user = payload.get("u") if isinstance(payload, dict) else None
    if prefix == "/account/report/" and method == "POST":
        assume(str(user).strip().lstrip("0") not in {"1", "True", "1.0"} and user is not True)
    token = URLSafeTimedSerializer(TEST_SECRET, salt=TOKEN_SALTS[prefix]).dumps(payload)
    body = urlencode(
        {"csrf_token": fuzz_site.csrf_token, "password": "x" * 12, "password2": "x" * 12}
    ).encode()
    request = {
        "method": method,
        "path": prefix + token,
        "headers": {
            "Cookie": f"push2fa_session={fuzz_site.session_cookie}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        "body": body if method == "POST" else None,
    }

    status = await _send(fuzz_site, request)

    fuzz_site.saw(request, status)
