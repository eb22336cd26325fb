"""Password reset by e-mail, end to end: request, mail (real SMTP or the outbox), link, reset."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from quart import Quart

from push2fa.domain.reset_tokens import SALT
from push2fa.web.forms import CSRF_ERROR
from tests.conftest import TEST_SECRET, csrf_from, get_csrf, login, register
from tests.web.auth.mailbox import Recorder, body_of, reset_path_in, sent_mail, smtp_server
from tests.web.auth.rows import audit_events, login_sessions, user_named

OLD_PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
SENT = "If that address belongs to an account, a reset link is on its way."
INVALID_LINK = "That reset link is invalid or has expired."
CSRF_INPUT_RE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+(")')


def without_csrf(page: str) -> str:
    return CSRF_INPUT_RE.sub(r"\1…\2", page)


async def request_reset(client: Any, email: str) -> Any:
    token = await get_csrf(client, "/auth/reset")
    return await client.post("/auth/reset", form={"csrf_token": token, "email": email})


async def choose_password(client: Any, path: str, password: str, repeat: str | None = None) -> Any:
    page = await client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    token = csrf_from(await page.get_data(as_text=True))
    return await client.post(
        path,
        form={"csrf_token": token, "password": password, "password2": repeat or password},
    )


async def is_logged_in(client: Any, username: str = "alice") -> bool:
    page = await (await client.get("/")).get_data(as_text=True)
    return f"Hello, {username}!" in page


async def reset_link_from_outbox(app: Quart, client: Any, email: str = "alice@example.com") -> str:
    before = len(await sent_mail(app))
    response = await request_reset(client, email)
    assert response.status_code == 302
    mails = await sent_mail(app)
    assert len(mails) == before + 1, "no reset mail in the outbox"
    return reset_path_in(mails[-1])


def resigned(path: str, age_seconds: int) -> str:
    """The same reset link, but signed as if it had been issued `age_seconds` ago."""
    prefix, token = path.rsplit("/", 1)
    payload = URLSafeTimedSerializer(TEST_SECRET, salt=SALT).loads(token)
    issued_at = int(time.time()) - age_seconds

    class SignedThen(TimestampSigner):
        def get_timestamp(self) -> int:
            return issued_at

    serializer = URLSafeTimedSerializer(TEST_SECRET, salt=SALT, signer=SignedThen)
    return f"{prefix}/{serializer.dumps(payload)}"


# --- the request page -----------------------------------------------------------------------


async def test_reset_request_answers_the_same_whether_or_not_the_address_exists(app: Quart):
    await register(app.test_client(), "alice", email="alice@example.com")
    known_client, unknown_client = app.test_client(), app.test_client()

    known = await request_reset(known_client, "alice@example.com")
    unknown = await request_reset(unknown_client, "nobody@example.com")

    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"] == "/auth/login"
    assert await known.get_data() == await unknown.get_data()
    known_page = await (await known_client.get("/auth/login")).get_data(as_text=True)
    unknown_page = await (await unknown_client.get("/auth/login")).get_data(as_text=True)
    assert SENT in known_page
    assert without_csrf(known_page) == without_csrf(unknown_page)
    assert known_page != unknown_page  # only because each browser has its own CSRF token


async def test_reset_request_for_unknown_address_sends_nothing_but_is_recorded(app: Quart, client):
    await register(client, "alice", email="alice@example.com")

    await request_reset(client, "nobody@example.com")

    assert await sent_mail(app) == []
    [event] = await audit_events(app, "password.reset_requested")
    assert event.user_id is None  # the same write as for a known address, nothing to time
    assert "nobody@example.com" not in repr(event.details)


@pytest.mark.parametrize(
    "email", ["", "not-an-address", "a" * 300 + "@example.com", "ali\x00ce@example.com"]
)
async def test_reset_request_with_invalid_address_is_a_form_error(app: Quart, client, email: str):
    response = await request_reset(client, email)

    assert response.status_code == 400
    assert 'id="email-errors"' in await response.get_data(as_text=True)
    assert await sent_mail(app) == []


async def test_reset_request_without_csrf_token_is_400_and_sends_nothing(app: Quart, client):
    await register(client, "alice", email="alice@example.com")
    await client.get("/auth/reset")

    response = await client.post("/auth/reset", form={"email": "alice@example.com"})

    assert response.status_code == 400
    assert CSRF_ERROR in await response.get_data(as_text=True)
    assert await sent_mail(app) == []


# --- delivery -------------------------------------------------------------------------------


@pytest.fixture
async def smtp(overrides: dict[str, Any]) -> AsyncIterator[Recorder]:
    """A real SMTP server the app under test is configured to send through."""
    async with smtp_server() as (port, recorder):
        overrides.update(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False)
        yield recorder


async def test_reset_mail_through_real_smtp_completes_the_reset(smtp: Recorder, app: Quart, client):
    await register(client, "alice", email="alice@example.com")

    assert (await request_reset(client, "ALICE@example.com")).status_code == 302
    recipients, message = await smtp.next_message()

    assert recipients == ["alice@example.com"]
    assert message["Subject"] == "Reset your push2fa password"
    assert message["From"] == "push2fa <no-reply@localhost>"
    assert "http://localhost:5000/auth/reset/" in body_of(message)
    path = reset_path_in(message)
    response = await choose_password(client, path, NEW_PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login"
    assert (await login(client, "alice", OLD_PASSWORD)).status_code == 400
    assert (await login(client, "alice", NEW_PASSWORD)).status_code == 302
    assert await is_logged_in(client)
    assert await sent_mail(app) == []  # delivered over SMTP, not to the outbox


async def test_reset_mail_without_smtp_is_written_to_the_outbox(app: Quart, client):
    await register(client, "alice", email="alice@example.com")

    await request_reset(client, "alice@example.com")

    [message] = await sent_mail(app)
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == "Reset your push2fa password"
    assert "within 30 minutes" in body_of(message)
    assert reset_path_in(message).startswith("/auth/reset/")
    [event] = await audit_events(app, "password.reset_requested")
    assert event.user_id == (await user_named(app, "alice")).id


# --- the link -------------------------------------------------------------------------------


async def test_reset_link_works_once(app: Quart, client):
    await register(client)
    path = await reset_link_from_outbox(app, client)
    assert (await choose_password(client, path, NEW_PASSWORD)).status_code == 302

    again = await client.get(path)

    assert again.status_code == 302
    assert again.headers["Location"] == "/auth/reset"
    assert INVALID_LINK in await (await client.get("/auth/reset")).get_data(as_text=True)
    assert (await login(client, "alice", NEW_PASSWORD)).status_code == 302


async def test_second_post_of_a_spent_link_changes_nothing(app: Quart, client):
    await register(client)
    path = await reset_link_from_outbox(app, client)
    page = await (await client.get(path)).get_data(as_text=True)
    token = csrf_from(page)
    first = {"csrf_token": token, "password": NEW_PASSWORD, "password2": NEW_PASSWORD}
    assert (await client.post(path, form=first)).status_code == 302

    # The reset ended the session, and with it that token: take a valid one, so that what
    # refuses the second post is the spent link, not the CSRF check.
    fresh = await get_csrf(client, "/auth/reset")
    second = {"csrf_token": fresh, "password": "third password!", "password2": "third password!"}
    response = await client.post(path, form=second)

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/reset"
    assert (await login(client, "alice", "third password!")).status_code == 400
    assert (await login(client, "alice", NEW_PASSWORD)).status_code == 302


async def test_using_one_reset_link_voids_the_others(app: Quart, client):
    await register(client)
    first = await reset_link_from_outbox(app, client)
    second = await reset_link_from_outbox(app, client)
    assert first != second

    assert (await choose_password(client, second, NEW_PASSWORD)).status_code == 302

    assert (await client.get(first)).headers["Location"] == "/auth/reset"


async def test_reset_link_younger_than_30_minutes_works(app: Quart, client):
    await register(client)
    path = resigned(await reset_link_from_outbox(app, client), age_seconds=29 * 60)

    assert (await choose_password(client, path, NEW_PASSWORD)).status_code == 302
    assert (await login(client, "alice", NEW_PASSWORD)).status_code == 302


async def test_reset_link_older_than_30_minutes_is_refused(app: Quart, client):
    await register(client)
    path = resigned(await reset_link_from_outbox(app, client), age_seconds=31 * 60)

    response = await client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/reset"
    assert INVALID_LINK in await (await client.get("/auth/reset")).get_data(as_text=True)


def _flip(char: str) -> str:
    return "A" if char != "A" else "B"


@pytest.mark.parametrize("where", ["signature", "payload", "truncated", "foreign-key"])
async def test_tampered_reset_link_is_refused(app: Quart, client, where: str):
    await register(client)
    path = await reset_link_from_outbox(app, client)
    prefix, token = path.rsplit("/", 1)
    if where == "signature":  # not the last character: its low bits are base64 padding
        body, signature = token.rsplit(".", 1)
        token = f"{body}.{_flip(signature[0])}{signature[1:]}"
    elif where == "payload":
        token = _flip(token[0]) + token[1:]
    elif where == "truncated":
        token = token[: len(token) // 2]
    else:
        token = URLSafeTimedSerializer("another-secret-key-of-some-length", salt=SALT).dumps(
            URLSafeTimedSerializer(TEST_SECRET, salt=SALT).loads(token)
        )

    get = await client.get(f"{prefix}/{token}")
    # A valid CSRF token, so that what refuses the post is the tampered link.
    csrf = await get_csrf(client, "/auth/reset")
    post = await client.post(
        f"{prefix}/{token}",
        form={"csrf_token": csrf, "password": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    for response in (get, post):
        assert response.status_code == 302
        assert response.headers["Location"] == "/auth/reset"
    assert (await login(client, "alice", OLD_PASSWORD)).status_code == 302


@pytest.mark.parametrize("token", ["x", "a" * 5000, "..", "%00", "not.a.token"])
async def test_garbage_reset_token_is_refused_without_error(client, token: str):
    response = await client.get(f"/auth/reset/{token}")

    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/reset"


@pytest.mark.parametrize(
    ("password", "repeat", "message"),
    [
        ("short", "short", "at least 8"),
        (NEW_PASSWORD, NEW_PASSWORD + "!", "Passwords must match."),
        ("a" * 73, "a" * 73, "at most 72 bytes"),
        ("€" * 25, "€" * 25, "at most 72 bytes"),
    ],
    ids=["too-short", "mismatch", "73-bytes", "25-euro-signs"],
)
async def test_reset_form_errors_keep_the_link_usable(
    app: Quart, client, password: str, repeat: str, message: str
):
    await register(client)
    path = await reset_link_from_outbox(app, client)

    response = await choose_password(client, path, password, repeat)

    assert response.status_code == 400
    assert message in await response.get_data(as_text=True)
    assert (await choose_password(client, path, NEW_PASSWORD)).status_code == 302


async def test_reset_form_without_csrf_token_is_400_and_changes_nothing(app: Quart, client):
    await register(client)
    path = await reset_link_from_outbox(app, client)
    await client.get(path)

    response = await client.post(path, form={"password": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 400
    assert CSRF_ERROR in await response.get_data(as_text=True)
    assert (await login(client, "alice", OLD_PASSWORD)).status_code == 302


async def test_reset_ends_every_other_session_of_the_user(app: Quart, client):
    await register(client)
    laptop = app.test_client()
    await login(laptop, remember="y")
    assert await is_logged_in(laptop)
    jar = laptop.cookie_jar
    assert jar is not None
    stolen = next(c.value for c in jar if c.name == "push2fa_auth")
    assert stolen is not None

    path = await reset_link_from_outbox(app, client)
    assert (await choose_password(client, path, NEW_PASSWORD)).status_code == 302

    assert not await is_logged_in(laptop)
    replay = app.test_client()
    replay.set_cookie("localhost", "push2fa_auth", stolen)
    assert not await is_logged_in(replay)
    assert [row.ended_reason for row in await login_sessions(app, "alice")] == ["password_reset"]
    [event] = await audit_events(app, "password.reset")
    assert event.user_id == (await user_named(app, "alice")).id


async def test_reset_in_a_logged_in_browser_logs_it_out(app: Quart, client):
    await register(client)
    await login(client)
    path = await reset_link_from_outbox(app, client)

    assert (await choose_password(client, path, NEW_PASSWORD)).status_code == 302

    assert not await is_logged_in(client)
