"""Register, log in and log out through the real app (push2fa/web/auth/views.py)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import bcrypt
import pytest
from quart import Quart

from push2fa.web.forms import CSRF_ERROR
from tests.conftest import csrf_from, get_csrf, login, register
from tests.web.auth.mailbox import sent_mail
from tests.web.auth.rows import all_users, audit_events, user_named

PASSWORD = "correct horse battery"
ACCOUNT_READY = "Your account is ready. Please log in."
INVALID_LOGIN = "Invalid username or password."
MAX_BODY = 256 * 1024


def set_cookies(response: Any) -> dict[str, dict[str, str]]:
    """Each Set-Cookie header of a response as {name: {attribute: value}} (flags map to "")."""
    cookies: dict[str, dict[str, str]] = {}
    for header in response.headers.getlist("Set-Cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            attrs = {key.lower(): str(value) for key, value in morsel.items() if value}
            attrs["value"] = morsel.value
            cookies[name] = attrs
    return cookies


def raw_flags(response: Any, name: str) -> set[str]:
    """The lower-cased attribute names in the raw Set-Cookie header for `name`."""
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return {part.split("=", 1)[0].strip().lower() for part in header.split(";")[1:]}
    raise AssertionError(f"no Set-Cookie for {name}")


def cookie_value(client: Any, name: str) -> str | None:
    for cookie in client.cookie_jar:
        if cookie.name == name:
            return str(cookie.value)
    return None


def field_errors(page: str, field_id: str) -> str:
    """The text of the error block rendered under one form field."""
    match = re.search(rf'<div id="{field_id}-errors"[^>]*>(.*?)</div>\s*</div>', page, re.S)
    assert match, f"no error block for {field_id}"
    return match.group(1)


async def page_text(client: Any, path: str = "/") -> str:
    return str(await (await client.get(path)).get_data(as_text=True))


async def post_register(client: Any, **fields: str) -> Any:
    form = {
        "csrf_token": await get_csrf(client, "/auth/register"),
        "username": "alice",
        "email": "alice@example.com",
        "password": PASSWORD,
        "password2": PASSWORD,
    }
    form.update(fields)
    return await client.post("/auth/register", form={k: v for k, v in form.items() if v})


# --- register -------------------------------------------------------------------------------


async def test_register_creates_account_with_bcrypt_hash_and_audit_row(app: Quart, client):
    response = await post_register(client)

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    [user] = await all_users(app)
    assert (user.username, user.email) == ("alice", "alice@example.com")
    assert user.password_hash.startswith("$2b$04$")  # bcrypt at the test cost
    assert bcrypt.checkpw(PASSWORD.encode(), user.password_hash.encode())
    [event] = await audit_events(app, "account.registered")
    assert event.user_id == user.id


async def test_register_success_flashes_on_login_page(client):
    await post_register(client)

    assert ACCOUNT_READY in await page_text(client, "/auth/login")


@pytest.mark.parametrize(
    ("fields", "field_id", "message"),
    [
        ({"username": ""}, "username", "This field is required."),
        ({"email": ""}, "email", "This field is required."),
        ({"password": ""}, "password", "This field is required."),
        ({"password2": ""}, "password2", "This field is required."),
        ({"username": "al ice"}, "username", "Use letters, digits, dots, dashes and underscores."),
        ({"username": "alice!"}, "username", "Use letters, digits, dots, dashes and underscores."),
        ({"username": "_alice"}, "username", "Use letters, digits, dots, dashes and underscores."),
        ({"username": "älice"}, "username", "Use letters, digits, dots, dashes and underscores."),
        ({"username": "alice\n"}, "username", "Use letters, digits, dots, dashes and underscores."),
        (
            {"username": "al\x00ce"},
            "username",
            "Use letters, digits, dots, dashes and underscores.",
        ),
        ({"username": "ab"}, "username", "Field must be between 3 and 32 characters long."),
        ({"username": "a" * 33}, "username", "Field must be between 3 and 32 characters long."),
        ({"email": "alice.example.com"}, "email", "Invalid email address."),
        ({"email": "alice@"}, "email", "Invalid email address."),
        ({"email": "alice@example.com\nBcc: x@evil.test"}, "email", "Invalid email address."),
        ({"email": "ali\x00ce@example.com"}, "email", "Invalid email address."),
        ({"password2": PASSWORD + "!"}, "password2", "Passwords must match."),
        ({"password": "seven77", "password2": "seven77"}, "password", "at least 8"),
        ({"password": "a" * 73, "password2": "a" * 73}, "password", "at most 72 bytes"),
        ({"password": "€" * 25, "password2": "€" * 25}, "password", "at most 72 bytes"),
    ],
    ids=[
        "missing-username",
        "missing-email",
        "missing-password",
        "missing-confirmation",
        "username-space",
        "username-punctuation",
        "username-leading-underscore",
        "username-non-ascii",
        "username-trailing-newline",
        "username-nul",
        "username-too-short",
        "username-too-long",
        "email-without-at",
        "email-without-domain",
        "email-header-injection",
        "email-nul",
        "passwords-differ",
        "password-7-bytes",
        "password-73-bytes",
        "password-25-euro-signs",
    ],
)
async def test_register_form_error_is_shown_and_nothing_is_created(
    app: Quart, client, fields: dict[str, str], field_id: str, message: str
):
    response = await post_register(client, **fields)

    assert response.status_code == 400
    assert message in field_errors(await response.get_data(as_text=True), field_id)
    assert await all_users(app) == []


@pytest.mark.parametrize(
    "password", ["a" * 72, "€" * 24, "12345678"], ids=["72-ascii", "24-euro", "8-bytes"]
)
async def test_register_accepts_passwords_of_8_to_72_bytes_and_they_log_in(
    app: Quart, client, password: str
):
    response = await post_register(client, password=password, password2=password)
    assert response.status_code == 302

    assert (await login(client, "alice", password)).status_code == 302
    assert "Hello, alice!" in await page_text(client)


@pytest.mark.parametrize("username", ["abc", "a" * 32, "a.b-c_d9"])
async def test_register_accepts_usernames_at_the_limits(app: Quart, client, username: str):
    response = await post_register(client, username=username)

    assert response.status_code == 302
    assert (await user_named(app, username)).username == username


async def test_register_refuses_username_taken_in_another_case(app: Quart, client):
    await register(client, "alice")

    response = await post_register(client, username="ALICE", email="other@example.com")

    assert response.status_code == 400
    assert "Please use a different username." in await response.get_data(as_text=True)
    assert len(await all_users(app)) == 1


async def test_register_with_taken_email_looks_like_success_and_mails_the_owner(app: Quart, client):
    await register(client, "alice", email="alice@example.com")
    fresh = await post_register(client, username="newcomer", email="newcomer@example.com")
    assert await sent_mail(app) == []

    response = await post_register(client, username="bob", email="ALICE@Example.COM")

    assert response.status_code == fresh.status_code == 302
    assert response.headers["Location"] == fresh.headers["Location"]
    assert ACCOUNT_READY in await page_text(client, "/auth/login")
    assert sorted(u.username for u in await all_users(app)) == ["alice", "newcomer"]
    [mail] = await sent_mail(app)
    assert mail["To"] == "alice@example.com"  # the stored address, not the typed one
    assert "already has one" in mail.get_content()
    alice = await user_named(app, "alice")
    [event] = await audit_events(app, "account.register_with_taken_email")
    assert event.user_id == alice.id


async def test_register_twice_with_the_same_non_ascii_address_keeps_one_account(app: Quart, client):
    await register(client, "elise", email="Élise@example.com")

    response = await post_register(client, username="other", email="Élise@example.com")

    assert response.status_code == 302
    assert [u.username for u in await all_users(app)] == ["elise"]
    [mail] = await sent_mail(app)
    assert mail["To"] == "Élise@example.com"


@pytest.mark.parametrize("token", [None, "", "not-a-token", "##1234567890"])
async def test_register_without_valid_csrf_token_is_400_and_creates_nothing(
    app: Quart, client, token: str | None
):
    await client.get("/auth/register")
    form = {"username": "alice", "email": "alice@example.com"}
    form |= {"password": PASSWORD, "password2": PASSWORD}
    if token is not None:
        form["csrf_token"] = token

    response = await client.post("/auth/register", form=form)

    assert response.status_code == 400
    assert CSRF_ERROR in await response.get_data(as_text=True)
    assert await all_users(app) == []


async def test_register_with_csrf_token_of_another_browser_is_refused(app: Quart, client):
    other_browser = app.test_client()
    token = await get_csrf(other_browser, "/auth/register")
    await client.get("/auth/register")

    response = await client.post(
        "/auth/register",
        form={
            "csrf_token": token,
            "username": "alice",
            "email": "alice@example.com",
            "password": PASSWORD,
            "password2": PASSWORD,
        },
    )

    assert response.status_code == 400
    assert await all_users(app) == []


async def test_register_with_100_kb_username_is_a_form_error(app: Quart, client):
    response = await post_register(client, username="a" * 100_000)

    assert response.status_code == 400
    assert "between 3 and 32 characters" in await response.get_data(as_text=True)
    assert await all_users(app) == []


async def test_register_with_100_kb_username_and_email_shows_both_errors(app: Quart, client):
    big = "a" * 100_000
    response = await post_register(client, username=big, email=big + "@example.com")

    assert response.status_code == 400
    page = await response.get_data(as_text=True)
    assert "between 3 and 32 characters" in field_errors(page, "username")
    assert field_errors(page, "email")
    assert await all_users(app) == []


async def test_body_over_the_size_limit_is_413_with_an_error_page(app: Quart, client):
    token = await get_csrf(client, "/auth/register")
    body = f"csrf_token={token}&username=alice&about=".encode() + b"x" * (MAX_BODY + 1)

    response = await client.post(
        "/auth/register",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Request too large" in await response.get_data(as_text=True)
    assert await all_users(app) == []


@pytest.mark.parametrize(
    "encoded",
    [
        b"username=alice\xff&email=alice%40example.com",
        b"username=al%FFice&email=alice%40example.com",
        b"username=alice&email=alice%40example.com&password=%FF%FE%FD%FC%FB%FA%F9%F8&password2="
        b"%FF%FE%FD%FC%FB%FA%F9%F8",
        b"username=alice&email=alice%40example.com&password=%C3%28abcdefgh&password2=%C3%28abcdefgh",
    ],
    ids=["raw-byte", "percent-encoded-in-username", "invalid-password-bytes", "bad-sequence"],
)
async def test_register_with_non_utf8_body_is_refused_and_creates_nothing(
    app: Quart, client, encoded: bytes
):
    token = await get_csrf(client, "/auth/register")
    fields = encoded
    if b"password=" not in fields:
        fields += b"&password=abcdefghij&password2=abcdefghij"

    response = await client.post(
        "/auth/register",
        data=b"csrf_token=" + token.encode() + b"&" + fields,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/html")
    assert await all_users(app) == []


async def test_logged_in_user_visiting_register_goes_home(client):
    await register(client)
    await login(client)

    response = await client.get("/auth/register")

    assert response.status_code == 302
    assert response.headers["Location"] == "/"


# --- log in ---------------------------------------------------------------------------------


@pytest.mark.parametrize("login_name", ["alice", "ALICE", "alice@example.com", "Alice@EXAMPLE.com"])
async def test_login_by_username_or_email_in_any_case(client, login_name: str):
    await register(client, "alice", email="alice@example.com")

    response = await login(client, login_name)

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = await page_text(client)
    assert "Hello, alice!" in page
    assert "Welcome, alice." in page and "Welcome back" not in page  # a first login


async def test_first_login_from_the_browser_that_registered_sends_no_new_login_mail(
    app: Quart, client
):
    await register(client, "alice")

    await login(client, "alice")

    assert "Hello, alice!" in await page_text(client)
    assert await sent_mail(app) == []


async def test_first_login_from_another_browser_still_sends_the_new_login_mail(app: Quart, client):
    await register(client, "alice")
    other = app.test_client()
    token = await get_csrf(other, "/auth/login")

    await other.post(
        "/auth/login",
        form={"csrf_token": token, "login": "alice", "password": "correct horse battery"},
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"},
    )

    [mail] = await sent_mail(app)
    assert "new browser" in mail.get_content()


async def test_welcome_back_is_said_only_from_the_second_login_on(client):
    await register(client, "alice")
    await login(client, "alice")
    assert "Welcome back" not in await page_text(client)
    await client.post("/auth/logout", form={"csrf_token": await logout_token(client)})

    await login(client, "alice")

    assert "Welcome back, alice." in await page_text(client)


async def test_login_by_non_ascii_email_address(client):
    await register(client, "elise", email="Élise@example.com")

    response = await login(client, "Élise@example.com")

    assert response.status_code == 302


async def test_login_records_success_in_audit(app: Quart, client):
    await register(client)
    await login(client)

    [event] = await audit_events(app, "login.succeeded")
    assert event.user_id == (await user_named(app, "alice")).id


async def test_wrong_password_and_unknown_user_get_the_same_answer(app: Quart, client):
    await register(client, "alice")

    wrong_password = await login(client, "alice", "wrong password!")
    unknown_user = await login(client, "mallory", "wrong password!")

    assert wrong_password.status_code == unknown_user.status_code == 400
    for response in (wrong_password, unknown_user):
        page = await response.get_data(as_text=True)
        assert INVALID_LOGIN in page
        assert "Welcome back" not in page
    assert "Hello, alice!" not in await page_text(client)
    assert len(await audit_events(app, "login.password_failed")) == 2


async def test_password_longer_than_72_bytes_does_not_match_its_72_byte_prefix(client):
    await register(client, password="p" * 72)

    response = await login(client, "alice", "p" * 72 + "extra")

    assert response.status_code == 400
    assert INVALID_LOGIN in await response.get_data(as_text=True)


@pytest.mark.parametrize(
    "form",
    [
        {"login": "", "password": PASSWORD},
        {"login": "alice", "password": ""},
        {"login": "ali\x00ce", "password": PASSWORD},
        {"login": "a" * 255, "password": PASSWORD},
        {"login": "alice", "password": "p" * 1025},
    ],
    ids=["no-login", "no-password", "control-character", "login-too-long", "password-too-long"],
)
async def test_login_form_errors_do_not_log_in(client, form: dict[str, str]):
    await register(client)
    token = await get_csrf(client, "/auth/login")

    response = await client.post("/auth/login", form={"csrf_token": token, **form})

    assert response.status_code == 400
    assert "Hello, alice!" not in await page_text(client)


async def test_login_without_csrf_token_is_400_and_does_not_log_in(client):
    await register(client)
    await client.get("/auth/login")

    response = await client.post("/auth/login", form={"login": "alice", "password": PASSWORD})

    assert response.status_code == 400
    assert CSRF_ERROR in await response.get_data(as_text=True)
    assert "Hello, alice!" not in await page_text(client)


async def test_login_starts_a_new_session(client):
    await register(client)
    token = await get_csrf(client, "/auth/login")
    async with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    before = cookie_value(client, "push2fa_session")

    response = await client.post(
        "/auth/login", form={"csrf_token": token, "login": "alice", "password": PASSWORD}
    )

    assert response.status_code == 302
    after = cookie_value(client, "push2fa_session")
    assert before is not None and after is not None
    assert after != before
    async with client.session_transaction() as session:
        assert "planted" not in session
        assert "csrf" not in session  # the pre-login CSRF secret does not survive either


async def test_login_with_remember_me_sets_persistent_auth_cookie(client):
    await register(client)

    response = await login(client, remember="y")

    assert response.status_code == 302
    auth = set_cookies(response)["push2fa_auth"]
    assert int(auth["max-age"]) == 30 * 24 * 3600
    assert "expires" in auth


async def test_login_without_remember_me_sets_session_cookies(client):
    await register(client)

    response = await login(client)

    assert response.status_code == 302
    cookies = set_cookies(response)
    for name in ("push2fa_auth", "push2fa_session"):
        assert "max-age" not in cookies[name], name
        assert "expires" not in cookies[name], name


async def test_login_cookies_are_httponly_and_samesite_lax_but_not_secure_over_http(client):
    await register(client)

    response = await login(client)

    cookies = set_cookies(response)
    for name in ("push2fa_auth", "push2fa_session"):
        assert cookies[name]["samesite"] == "Lax", name
        assert "httponly" in raw_flags(response, name), name
        assert "secure" not in raw_flags(response, name), name


@pytest.fixture
def https_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    overrides["public_url"] = "https://example.test"
    return overrides


async def test_login_cookies_are_secure_when_the_public_url_is_https(https_overrides, app):
    client = app.test_client()
    token = csrf_from(
        await (await client.get("/auth/register", scheme="https")).get_data(as_text=True)
    )
    await client.post(
        "/auth/register",
        scheme="https",
        form={
            "csrf_token": token,
            "username": "alice",
            "email": "alice@example.com",
            "password": PASSWORD,
            "password2": PASSWORD,
        },
    )
    page = await (await client.get("/auth/login", scheme="https")).get_data(as_text=True)

    response = await client.post(
        "/auth/login",
        scheme="https",
        form={"csrf_token": csrf_from(page), "login": "alice", "password": PASSWORD},
    )

    assert response.status_code == 302
    for name in ("push2fa_auth", "push2fa_session"):
        assert {"secure", "httponly"} <= raw_flags(response, name), name
        assert set_cookies(response)[name]["samesite"] == "Lax", name


BAD_NEXT = [
    "//evil.com",
    "//evil.com/path",
    "/\\evil.com",
    "\\\\evil",
    "https://evil.com",
    "http://evil.com/",
    "HTTPS://evil.com",
    "javascript:alert(1)",
    "http:/x",
    "evil.com",
    "/\tevil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "/ok\x00",
    "/\x7f",
    "/" + "a" * 600,
]
BAD_NEXT_IDS = [
    "protocol-relative",
    "protocol-relative-path",
    "slash-backslash",
    "double-backslash",
    "https",
    "http",
    "uppercase-scheme",
    "javascript",
    "scheme-single-slash",
    "bare-host",
    "tab",
    "tab-slash",
    "newline",
    "crlf",
    "nul",
    "del",
    "over-long",
]


@pytest.mark.parametrize("target", BAD_NEXT, ids=BAD_NEXT_IDS)
async def test_login_ignores_unsafe_next_in_form(client, target: str):
    await register(client)

    response = await login(client, next=target)

    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", BAD_NEXT, ids=BAD_NEXT_IDS)
async def test_login_ignores_unsafe_next_in_query_string(client, target: str):
    await register(client)
    token = await get_csrf(client, "/auth/login")

    response = await client.post(
        f"/auth/login?next={quote(target, safe='')}",
        form={"csrf_token": token, "login": "alice", "password": PASSWORD},
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/user/alice", "/profile/edit?tab=about", "/a/b/c"])
async def test_login_returns_to_a_local_next_path(client, target: str):
    await register(client)

    response = await login(client, next=target)

    assert response.status_code == 302
    assert response.headers["Location"] == target


async def test_login_page_carries_only_a_safe_next_in_its_form(client):
    page = await page_text(client, "/auth/login?next=" + quote("//evil.com", safe=""))
    assert 'name="next" type="hidden" value="/"' in page

    page = await page_text(client, "/auth/login?next=" + quote("/user/alice", safe=""))
    assert 'name="next" type="hidden" value="/user/alice"' in page


async def test_logged_in_user_visiting_login_goes_to_next(client):
    await register(client)
    await login(client)

    local = await client.get("/auth/login?next=/profile/edit")
    evil = await client.get("/auth/login?next=" + quote("//evil.com", safe=""))

    assert (local.status_code, local.headers["Location"]) == (302, "/profile/edit")
    assert (evil.status_code, evil.headers["Location"]) == (302, "/")


# --- log out --------------------------------------------------------------------------------


async def logout_token(client: Any) -> str:
    """The CSRF token of the navbar's Log out form."""
    return csrf_from(await page_text(client))


async def test_logout_with_csrf_token_logs_out(client):
    await register(client)
    await login(client)

    response = await client.post("/auth/logout", form={"csrf_token": await logout_token(client)})

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "push2fa_auth" in set_cookies(response)  # deleted by an expired cookie
    page = await page_text(client)
    assert "You have been logged out." in page
    assert "Hello, alice!" not in page


@pytest.mark.parametrize("form", [{}, {"csrf_token": "forged"}], ids=["missing", "wrong"])
async def test_logout_without_valid_csrf_token_keeps_the_user_logged_in(
    client, form: dict[str, str]
):
    await register(client)
    await login(client)

    response = await client.post("/auth/logout", form=form)

    assert response.status_code in {302, 400}
    page = await page_text(client)
    assert "Hello, alice!" in page
    assert CSRF_ERROR in page or CSRF_ERROR in await response.get_data(as_text=True)


async def test_logout_by_get_is_405_and_keeps_the_user_logged_in(client):
    await register(client)
    await login(client)

    response = await client.get("/auth/logout")

    assert response.status_code == 405
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Hello, alice!" in await page_text(client)


async def test_anonymous_logout_redirects_to_login(client):
    await client.get("/")

    response = await client.post("/auth/logout", form={})

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/auth/login"


async def test_anonymous_logout_does_not_send_the_user_back_to_a_post_only_url(client):
    response = await client.post("/auth/logout", form={})

    next_values = parse_qs(urlsplit(response.headers["Location"]).query).get("next", [])
    assert "/auth/logout" not in next_values
