"""Logging in with a code: one decision, one completion, whichever way the answer came; a
recovery code spent only with its login. (The race with the waiting page's own completion
needs a real browser's navigation: tests/browser/test_code_logins.py.)"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import func, select, update
from yarl import URL

from push2fa.domain import recovery_codes
from push2fa.models import AuditEvent, LoginChallenge, Passkey, RecoveryCode, User, utcnow
from push2fa.web.account import history
from tests.conftest import csrf_from
from tests.web.twofa.conftest import Browser


@pytest.fixture
def site_options():
    return {"rate_limits": False}


@pytest.fixture
async def alice(site, browsers) -> tuple[Browser, int, list[str]]:
    browser = browsers()
    await browser.register("alice")
    await browser.login("alice")
    authy_id = await browser.enable_push()
    await browser.post_form("/account/recovery-codes", {}, page="/account/security")
    block = re.search(r'id="recovery-codes"[^>]*>(.*?)</pre>', browser.last_html, re.S)
    assert block is not None
    await browser.logout()
    return browser, authy_id, block.group(1).split()


async def _unused_codes(site) -> int:
    async with site.app.extensions["push2fa"].db.session() as db:
        return int(
            (
                await db.execute(select(func.count()).where(RecoveryCode.used_at.is_(None)))
            ).scalar_one()
        )


async def _logged_in(browser: Browser) -> bool:
    return "Hello, alice" in await (await browser.get("/")).text()


async def test_a_recovery_code_is_not_spent_when_the_login_cannot_happen(site, alice):
    browser, _, codes = alice
    await browser.login("alice")
    async with site.app.extensions["push2fa"].db.session() as db:  # past its time, unswept
        await db.execute(update(LoginChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
        await db.commit()
    await browser.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/2fa/wait")
    assert not await _logged_in(browser)
    assert await _unused_codes(site) == 10
    # A right code that came too late is no failed attempt: nothing counts toward the lock.
    async with site.app.extensions["push2fa"].db.session() as db:
        assert (await db.execute(select(User.failed_attempts))).scalar_one() == 0


async def test_a_code_after_the_phone_approved_logs_in_once_and_keeps_the_code(site, alice):
    browser, authy_id, codes = alice
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    resp = await browser.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/2fa/wait")
    assert resp.url.path == "/" and await _logged_in(browser)
    assert await _unused_codes(site) == 10
    async with site.app.extensions["push2fa"].db.session() as db:
        logins = (
            (await db.execute(select(AuditEvent).where(AuditEvent.event == "login.succeeded")))
            .scalars()
            .all()
        )
    # The enrolment's login and this one, completed once, and by the phone's approval.
    assert [history.WORDS["login.succeeded"](event) for event in logins] == [
        "Logged in with your password",
        "Login approved on your phone",
    ]


@pytest.mark.parametrize(
    ("path", "wrong", "words"),
    [
        ("/auth/2fa/recovery", "aaaa-bbbb-cccc", "Wrong recovery code typed"),
        ("/auth/2fa/totp", "000000", "Wrong code from the app typed"),
    ],
)
async def test_a_wrong_code_goes_into_the_security_history_as_what_it_was(
    site, alice, path: str, wrong: str, words: str
):
    browser, _, _ = alice
    await browser.login("alice")
    await browser.post_form(path, {"code": wrong}, page="/auth/2fa/wait")
    async with site.app.extensions["push2fa"].db.session() as db:
        failures = (
            (await db.execute(select(AuditEvent).where(AuditEvent.event == "auth.failure")))
            .scalars()
            .all()
        )
    assert [history.WORDS["auth.failure"](event) for event in failures] == [words]


async def test_a_recovery_code_login_goes_into_the_history_as_made_with_that_code(site, alice):
    browser, _, codes = alice
    await browser.login("alice")
    await browser.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/2fa/wait")
    assert await _logged_in(browser)
    async with site.app.extensions["push2fa"].db.session() as db:
        approvals = (
            (await db.execute(select(AuditEvent).where(AuditEvent.event == "push.approved")))
            .scalars()
            .all()
        )
    assert [history.WORDS["push.approved"](event) for event in approvals] == [
        "Login approved with a recovery code"
    ]


async def test_a_code_after_the_phone_denied_says_so_and_logs_nobody_in(site, alice):
    """The owner denied the push: a code typed afterwards on that page does not turn the
    denial into a login, and the page says why, with the code left unspent."""
    browser, authy_id, codes = alice
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "denied")
    for _ in range(100):  # the denial reaches the app through the webhook
        async with site.app.extensions["push2fa"].db.session() as db:
            if (await db.execute(select(LoginChallenge.status))).scalar_one() == "denied":
                break
        await asyncio.sleep(0.05)

    resp = await browser.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/2fa/wait")

    assert resp.url.path == "/auth/2fa/wait"
    assert (
        '<div class="alert alert-warning">The request was denied on your phone.</div>'
        in browser.last_html
    )
    assert not await _logged_in(browser)
    assert await _unused_codes(site) == 10


async def test_a_code_too_short_to_be_one_asks_for_the_code_again(site, alice):
    browser, _, _ = alice
    await browser.login("alice")
    resp = await browser.post_form("/auth/2fa/recovery", {"code": "12"}, page="/auth/2fa/wait")
    assert resp.url.path == "/auth/2fa/wait"
    # Shown as an error (red), saying what is missing.
    assert '<div class="alert alert-danger">Enter the code.</div>' in browser.last_html
    assert await _unused_codes(site) == 10


async def test_a_code_with_no_login_waiting_goes_to_the_login_page(site, alice, browsers):
    """A browser that never passed the password step has no challenge to answer."""
    _, _, codes = alice
    stranger = browsers()
    resp = await stranger.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/login")
    assert resp.url.path == "/auth/login"
    assert await _unused_codes(site) == 10


async def test_an_app_code_the_push_service_cannot_check_logs_nobody_in_and_says_why(site, alice):
    """The push service goes down after the push went out: the code from the app cannot be
    checked. Nobody is logged in, it is no failed attempt, and the page says, as an error,
    that the service could not be reached."""
    browser, authy_id, _ = alice
    await browser.login("alice")
    _, body = await site.control("GET", f"/devices/{authy_id}/totp")
    await site.stop_push_service()

    resp = await browser.post_form("/auth/2fa/totp", {"code": body["code"]}, page="/auth/2fa/wait")

    assert resp.url.path == "/auth/2fa/wait"
    assert re.search(
        r'<div class="alert alert-danger">We could not send the push to your phone right now '
        r"\(could not reach Authy \(\w+\)\)\. Please try again in a moment\.</div>",
        browser.last_html,
    ), browser.last_html
    assert not await _logged_in(browser)
    async with site.app.extensions["push2fa"].db.session() as db:
        assert (await db.execute(select(User.failed_attempts))).scalar_one() == 0


async def test_a_code_form_sent_twice_keeps_the_login_the_first_made(site, alice):
    """A double click sends the code form twice with the same cookie. The second answer
    arrives once the first has logged the browser in: it sends the browser on to where the
    login went, and leaves the cookie the login set alone (no session from before the
    login written back over it)."""
    browser, _, codes = alice
    await browser.login("alice", next="/account/security")
    await browser.get("/auth/2fa/wait")
    form = {"csrf_token": csrf_from(browser.last_html), "code": codes[0]}
    cookie_before = browser.cookie_header()
    url = f"{site.url}/auth/2fa/recovery"

    first = await browser.http.post(url, data=form)
    assert first.url.path == "/account/security"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as same_browser:
        second = await same_browser.post(
            url, data=form, headers={"Cookie": cookie_before}, allow_redirects=False
        )
    browser.http.cookie_jar.update_cookies(second.cookies, second.url)

    assert second.status in {302, 303}
    assert URL(second.headers["Location"]).path == "/account/security"
    assert await _logged_in(browser)
    assert await _unused_codes(site) == 9


@pytest.mark.parametrize("path", ["/auth/2fa/totp", "/auth/2fa/recovery"])
async def test_an_account_without_a_phone_takes_no_code_and_counts_no_failure(
    site, browsers, path: str
):
    """bob logs in with a passkey and has no phone, so no app code and no recovery code:
    a code posted to his login's forms goes back to the login page, checked against
    nothing and counted as no failed attempt."""
    bob = browsers()
    await bob.register("bob")
    async with site.app.extensions["push2fa"].db.session() as db:
        user_id = (await db.execute(select(User.id))).scalar_one()
        db.add(
            Passkey(
                user_id=user_id,
                credential_id="Ym9icy1sYXB0b3A",
                public_key=b"\x01",
                name="bob's laptop",
                device_type="single_device",
            )
        )
        await db.commit()
    resp = await bob.login("bob")
    assert resp.url.path == "/auth/2fa/wait" and "Confirm with your passkey" in bob.last_html

    resp = await bob.post_form(path, {"code": "123456"}, page="/auth/2fa/wait")

    assert resp.url.path == "/auth/login"
    assert "Log out" not in await (await bob.get("/")).text()
    async with site.app.extensions["push2fa"].db.session() as db:
        assert (await db.execute(select(User.failed_attempts))).scalar_one() == 0
        failures = select(func.count()).where(AuditEvent.event == "auth.failure")
        assert (await db.execute(failures)).scalar_one() == 0


async def test_a_recovery_code_login_warns_when_few_codes_are_left(site, alice):
    """From two codes left on, the login made with one says how many are left and where
    to make new ones; with more left it says nothing."""
    browser, _, codes = alice
    svc = site.app.extensions["push2fa"]
    async with svc.db.session() as db:  # six already used
        user_id = (await db.execute(select(User.id))).scalar_one()
        for code in codes[:6]:
            assert await recovery_codes.spend(db, svc.settings, user_id, code)
        await db.commit()
    pages = []
    for code in codes[6:9]:
        await browser.login("alice")
        resp = await browser.post_form("/auth/2fa/recovery", {"code": code}, page="/auth/2fa/wait")
        assert resp.url.path == "/"
        pages.append(browser.last_html)
        await browser.logout()
    three_left, two_left, one_left = pages

    assert "Make new ones on your security page." not in three_left
    assert (
        '<div class="alert alert-warning">'
        "Only 2 recovery codes left. Make new ones on your security page.</div>"
    ) in two_left
    assert (
        '<div class="alert alert-warning">'
        "Only 1 recovery code left. Make new ones on your security page.</div>"
    ) in one_left


async def test_a_code_login_with_the_trust_box_trusts_the_browser(site, alice):
    """The waiting page carries the "don't ask again" box with the code it sends: a login
    by recovery code then skips the push next time, like one approved on the phone."""
    browser, _, codes = alice
    await browser.login("alice")
    await browser.post_form(
        "/auth/2fa/recovery", {"code": codes[0], "trust": "y"}, page="/auth/2fa/wait"
    )
    assert await _logged_in(browser)
    await browser.logout()

    resp = await browser.login("alice")

    assert resp.url.path == "/"  # no push, no code this time
