"""Push fatigue and guessing defences, end to end: number matching, the push budget, the
failure lock, "this wasn't me", recovery codes, app codes, trusted browsers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from datetime import timedelta
from pathlib import Path

import pytest
import socketio
from sqlalchemy import func, select, update

from push2fa.models import AuditEvent, LoginChallenge, User, utcnow
from tests.web.twofa.conftest import PASSWORD


@pytest.fixture
def site_options():
    # Many logins in a few seconds here on purpose; the rate limits have their own module.
    return {"rate_limits": False}


async def _user(site, username="alice") -> User:
    async with site.app.extensions["push2fa"].db.session() as db:
        user: User = (await db.execute(select(User).where(User.username == username))).scalar_one()
        return user


async def _events(site, event: str) -> int:
    async with site.app.extensions["push2fa"].db.session() as db:
        return int(
            (await db.execute(select(func.count()).where(AuditEvent.event == event))).scalar_one()
        )


async def _age_challenges(site, seconds: int) -> None:
    """Move the account's history `seconds` into the past, as if time had passed."""
    delta = timedelta(seconds=seconds)
    async with site.app.extensions["push2fa"].db.session() as db:
        for challenge in (await db.execute(select(LoginChallenge))).scalars():
            challenge.created_at -= delta
        for event in (await db.execute(select(AuditEvent))).scalars():
            event.created_at -= delta
        await db.commit()


async def _login_with_push(site, browser, authy_id, **extra):
    await browser.login("alice", **extra)
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    return await browser.post_form(
        "/auth/2fa/complete", extra.get("complete", {}) or {}, page="/auth/2fa/wait"
    )


# --- number matching ----------------------------------------------------------------------


async def test_waiting_page_shows_a_two_digit_code_announced_to_screen_readers(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    code = browser.match_code()
    assert code is not None and len(code) == 2 and code.isdigit()
    assert 'aria-live="polite"' in browser.last_html
    request = await site.wait_for_request(authy_id)
    choices = request["hidden_details"]["match_choices"].split(",")
    assert len(choices) == 3 and len(set(choices)) == 3 and code in choices


async def test_wrong_number_denies_counts_a_failure_and_tells_the_page(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await browser.connect()
    request = await site.wait_for_request(authy_id)
    wrong = next(
        c
        for c in request["hidden_details"]["match_choices"].split(",")
        if c != browser.match_code()
    )
    await site.decide(request["uuid"], "approved", wrong)
    event = await browser.wait_status("challenge", "denied")
    assert event["reason"] == "wrong_number"
    assert (await _user(site)).failed_attempts == 1
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/auth/2fa/wait"
    assert (
        '<div class="alert alert-warning">'
        "The number picked on your phone did not match. The request was denied.</div>"
    ) in browser.last_html


async def test_approval_without_a_number_is_denied_when_matching_is_on(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await browser.connect()
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved")
    assert (await browser.wait_status("challenge", "denied"))["reason"] == "wrong_number"


# --- push budget and the failure lock -----------------------------------------------------


async def test_push_budget_stops_push_bombing_and_does_not_refill_with_time(site, enrolled):
    browser, authy_id = enrolled
    for _ in range(5):  # the default budget: five pushes since the last login
        resp = await browser.login("alice")
        assert resp.url.path == "/auth/2fa/wait"
        await browser.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")
    resp = await browser.login("alice")
    # The right password still reaches a page where codes work, but no push goes out.
    assert resp.url.path == "/auth/2fa/wait"
    assert "Too many requests went to your phone" in browser.last_html
    assert 'id="push-refused"' in browser.last_html and 'id="recovery-form"' in browser.last_html
    await site.app.extensions["push2fa"].withdrawer.settle()
    # The five cancelled pushes left the phone; the sixth was never sent.
    assert await site.pending_requests(authy_id) == []
    await _age_challenges(site, 7 * 24 * 3600)  # a week later: far past any old window
    await browser.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")
    resp = await browser.login("alice")
    assert 'id="push-refused"' in browser.last_html
    await site.app.extensions["push2fa"].withdrawer.settle()
    assert await site.pending_requests(authy_id) == []


async def test_resend_counts_against_the_same_budget(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    for _ in range(4):
        await _age_challenges(site, 11)
        await browser.post_form("/auth/2fa/resend", {}, page="/auth/2fa/wait")
        assert "A new request has been sent" in browser.last_html
    await _age_challenges(site, 11)
    await browser.post_form("/auth/2fa/resend", {}, page="/auth/2fa/wait")
    assert "Too many requests went to your phone" in browser.last_html


async def test_successful_login_resets_the_budget(site, enrolled):
    browser, authy_id = enrolled
    for _ in range(4):
        await browser.login("alice")
        await browser.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")
    resp = await _login_with_push(site, browser, authy_id)
    assert resp.url.path == "/"
    await browser.logout()
    for attempt in range(5):
        resp = await browser.login("alice")
        assert resp.url.path == "/auth/2fa/wait", (
            attempt,
            re.findall(r'class="alert[^"]*">([^<]*)', browser.last_html),
        )
        await browser.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")


# --- recovery codes and app codes ---------------------------------------------------------


async def _recovery_codes(browser) -> list[str]:
    await browser.post_form("/account/recovery-codes", {}, page="/account/security")
    block = re.search(r'<pre[^>]*id="recovery-codes"[^>]*>(.*?)</pre>', browser.last_html, re.S)
    assert block, browser.last_html[:400]
    return block.group(1).split()


async def test_recovery_codes_are_shown_once_and_each_works_once(site, browsers):
    browser = browsers()
    await browser.register("alice")
    await browser.login("alice")
    authy_id = await browser.enable_push()
    codes = await _recovery_codes(browser)
    assert len(codes) == 10 and len(set(codes)) == 10
    await browser.logout()

    await browser.login("alice")
    resp = await browser.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/2fa/wait")
    assert resp.url.path == "/", browser.last_html[:300]
    await browser.logout()

    await browser.login("alice")
    resp = await browser.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/2fa/wait")
    assert resp.url.path == "/auth/2fa/wait" and "not right" in browser.last_html
    assert (await _user(site)).failed_attempts == 1
    assert authy_id


async def test_code_from_the_app_logs_in_and_a_wrong_one_counts(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    resp = await browser.post_form("/auth/2fa/totp", {"code": "0000000"}, page="/auth/2fa/wait")
    assert "not right" in browser.last_html
    status, body = await site.control("GET", f"/devices/{authy_id}/totp")
    assert status == 200
    resp = await browser.post_form("/auth/2fa/totp", {"code": body["code"]}, page="/auth/2fa/wait")
    assert resp.url.path == "/"
    assert await _events(site, "push.approved") == 1  # the same state machine, by=totp


async def test_regenerating_codes_needs_a_fresh_second_factor(site, enrolled):
    browser, authy_id = enrolled
    async with site.app.extensions["push2fa"].db.session() as db:  # enrolled long ago
        await db.execute(update(User).values(push_enabled_at=utcnow() - timedelta(hours=1)))
        await db.commit()
    await browser.login("alice")
    await browser.post_form(
        "/auth/2fa/totp",
        {"code": (await site.control("GET", f"/devices/{authy_id}/totp"))[1]["code"]},
        page="/auth/2fa/wait",
    )
    codes = await _recovery_codes(browser)  # fresh: just logged in with a second factor
    assert len(codes) == 10


# --- failure lock --------------------------------------------------------------------------


async def test_consecutive_failures_lock_the_second_factor_until_a_reset(site, enrolled):
    browser, authy_id = enrolled
    limit = site.app.extensions["push2fa"].settings.max_failed_attempts
    async with site.app.extensions["push2fa"].db.session() as db:
        await db.execute(update(User).values(failed_attempts=limit - 1))
        await db.commit()
    await browser.login("alice")
    await browser.post_form("/auth/2fa/totp", {"code": "0000000"}, page="/auth/2fa/wait")
    assert (await _user(site)).second_factor_locked_at is not None
    assert await _events(site, "twofa.locked") == 1
    resp = await browser.login("alice")
    # No push while locked, and no app codes (guessable): the code page says so plainly.
    assert resp.url.path == "/auth/2fa/wait" and "locked" in browser.last_html
    assert 'id="push-refused"' in browser.last_html
    assert await _events(site, "push.created") == 2  # the refused login's challenge: no push
    status, body = await site.control("GET", f"/devices/{authy_id}/totp")
    await browser.post_form("/auth/2fa/totp", {"code": body["code"]}, page="/auth/2fa/wait")
    assert "codes from the app are not accepted" in browser.last_html
    assert "Hello, alice" not in await (await browser.get("/")).text()


# --- "this wasn't me" ----------------------------------------------------------------------


async def test_reported_push_ends_sessions_blocks_pushes_and_forces_a_new_password(
    site, enrolled, browsers
):
    browser, authy_id = enrolled
    other = browsers()  # alice is also logged in elsewhere, via her phone
    await _login_with_push(site, other, authy_id)
    assert "Hello, alice" in await (await other.get("/")).text()

    await browser.login("alice")  # an attacker with the password
    await browser.connect()
    request = await site.wait_for_request(authy_id)
    await site.control(
        "POST", f"/requests/{request['uuid']}", json={"status": "denied", "reason": "reported"}
    )
    assert (await browser.wait_status("challenge", "denied"))["reason"] == "reported"
    assert "Hello, alice" not in await (await other.get("/")).text()  # session ended
    resp = await browser.login("alice")
    assert resp.url.path == "/auth/2fa/wait" and "reported as not yours" in browser.last_html
    assert 'id="push-refused"' in browser.last_html
    user = await _user(site)
    assert user.must_change_password and user.push_blocked_until is not None

    async with site.app.extensions["push2fa"].db.session() as db:  # the block has passed
        await db.execute(update(User).values(push_blocked_until=utcnow()))
        await db.commit()
    resp = await _login_with_push(site, other, authy_id)
    assert resp.url.path == "/account/password"
    assert "choose a new password" in other.last_html.lower()
    home = await other.get("/")
    assert home.url.path == "/account/password"  # nothing else until it is changed
    await other.post_form(
        "/account/password",
        {"current": PASSWORD, "password": "a new secret 1", "password2": "a new secret 1"},
        page="/account/password",
    )
    assert "has been changed" in other.last_html


def _mail_text(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    content: str = message.get_content()
    return content


async def test_new_login_mail_links_to_a_working_report(site, enrolled, browsers, tmp_path):
    alice, authy_id = enrolled
    browser = browsers(user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0")
    outbox = Path(site.app.extensions["push2fa"].settings.instance_path) / "outbox"
    before = set(outbox.glob("*.eml")) if outbox.exists() else set()
    await _login_with_push(site, browser, authy_id)
    text = ""
    for _ in range(100):
        fresh = [p for p in outbox.glob("*.eml") if p not in before] if outbox.exists() else []
        bodies = [_mail_text(p) for p in fresh]
        text = next((b for b in bodies if "new browser" in b), "")
        if text:
            break
        await asyncio.sleep(0.05)
    assert "Firefox on Linux" in text
    found = re.search(r"(http://\S+/account/report/\S+)", text)
    assert found is not None, text
    link = found.group(1)
    stranger = browsers()
    resp = await stranger.http.get(link)
    stranger.last_html = await resp.text()
    await stranger.post_form(link.replace(site.url, ""), {})
    assert "Every session of the account has been ended" in stranger.last_html
    assert "Hello, alice" not in await (await browser.get("/")).text()


# --- trusted browsers ----------------------------------------------------------------------


async def test_trusted_browser_skips_the_push_until_revoked(site, enrolled):
    browser, authy_id = enrolled
    resp = await _login_with_push(site, browser, authy_id, complete={"trust": "y"})
    assert resp.url.path == "/"
    assert any(c.key == "push2fa_trusted" for c in browser.http.cookie_jar)
    await browser.logout()
    resp = await browser.login("alice")
    assert resp.url.path == "/"  # no push this time
    assert await _events(site, "push.created") == 1
    page = await (await browser.get("/account/security")).text()
    assert "Trusted browsers" in page and "Remove all" in page
    await browser.post_form("/account/trusted/revoke-all", {}, page="/account/security")
    await browser.logout()
    resp = await browser.login("alice")
    assert resp.url.path == "/auth/2fa/wait"


async def test_a_login_without_the_trust_box_leaves_the_browser_untrusted(site, enrolled):
    browser, authy_id = enrolled
    resp = await _login_with_push(site, browser, authy_id)
    assert resp.url.path == "/"
    assert not any(c.key == "push2fa_trusted" for c in browser.http.cookie_jar)
    assert await _events(site, "trusted_browser.added") == 0


async def test_a_trusted_browser_is_listed_as_the_browser_and_address_that_asked(
    site, enrolled, browsers
):
    """The security page names each trusted browser so its owner can tell a stranger's."""
    _, authy_id = enrolled
    firefox = browsers("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
    await _login_with_push(site, firefox, authy_id, complete={"trust": "y"})

    page = await (await firefox.get("/account/security")).text()

    listed = re.search(r'<ul class="status-list" id="trusted-browsers">(.*?)</ul>', page, re.S)
    assert listed is not None
    assert re.search(
        r'<div class="fw-semibold">Firefox on Linux</div>\s*'
        r'<div class="small text-body-secondary">127\.0\.0\.1 · last used',
        listed.group(1),
    ), listed.group(1)


async def test_trusted_browser_is_forgotten_after_a_password_change(site, enrolled):
    browser, authy_id = enrolled
    await _login_with_push(site, browser, authy_id, complete={"trust": "y"})
    await browser.post_form(
        "/account/password",
        {"current": PASSWORD, "password": "another secret 2", "password2": "another secret 2"},
        page="/account/password",
    )
    await browser.logout()
    resp = await browser.post_form(
        "/auth/login", {"login": "alice", "password": "another secret 2"}, page="/auth/login"
    )
    assert resp.url.path == "/auth/2fa/wait"


# --- security history and hardening -------------------------------------------------------


async def test_security_page_lists_history_and_highlights_unusual_events(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "denied")
    await _login_with_push(site, browser, authy_id)
    page = await (await browser.get("/account/security")).text()
    assert "Login denied on your phone" in page and "Login approved on your phone" in page
    assert 'class="card mb-2 history-entry is-flagged"' in page
    assert "someone knows your password" in page  # the flag explained to the owner
    assert 'data-format="relative"' in page


async def test_socket_from_another_origin_is_refused(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    sock = socketio.AsyncClient(reconnection=False)
    try:
        await sock.connect(
            site.url,
            transports=["websocket"],
            headers={"Cookie": browser.cookie_header(), "Origin": "http://evil.example"},
        )
    except socketio.exceptions.ConnectionError:
        return
    await sock.disconnect()
    raise AssertionError("a cross-origin socket was accepted")


async def test_enrolment_ends_with_recovery_codes_shown_once(site, browsers):
    browser = browsers()
    await browser.register("alice")
    await browser.login("alice")
    await browser.enable_push()
    first = await (await browser.get("/auth/2fa/enroll")).text()
    block = re.search(r'id="recovery-codes"[^>]*>(.*?)</pre>', first, re.S)
    assert block is not None
    codes = block.group(1).split()
    assert len(codes) == 10
    again = await (await browser.get("/auth/2fa/enroll")).text()
    assert 'id="recovery-codes"' not in again
    assert not any(code in again for code in codes)


async def test_lock_sends_a_notice_by_mail(site, enrolled):
    browser, _ = enrolled
    limit = site.app.extensions["push2fa"].settings.max_failed_attempts
    async with site.app.extensions["push2fa"].db.session() as db:
        await db.execute(update(User).values(failed_attempts=limit - 1))
        await db.commit()
    await browser.login("alice")  # wrong passwords do not count: a wrong code does
    await browser.post_form("/auth/2fa/totp", {"code": "0000000"}, page="/auth/2fa/wait")
    outbox = Path(site.app.extensions["push2fa"].settings.instance_path) / "outbox"
    for _ in range(100):
        texts = [_mail_text(p) for p in outbox.glob("*.eml")] if outbox.exists() else []
        if any("is locked" in t for t in texts):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no lock notice was mailed")
