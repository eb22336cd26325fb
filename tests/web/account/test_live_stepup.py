"""Sensitive changes need a fresh second factor, never the password alone.

The attacker here has Alice's password and a copy of her logged-in cookies, but not her
phone: a session whose second factor is not fresh (logged in through a trusted browser, or
long ago). Turning 2FA off, making new recovery codes and changing the password must all
stop at the phone; with the phone or a code they work, and each is mailed to Alice.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from yarl import URL

from push2fa.models import AuditEvent, RecoveryCode, User, utcnow
from tests.conftest import csrf_from
from tests.web.twofa.conftest import API_KEY, PASSWORD

NEW_PASSWORD = "a different secret 7"


@pytest.fixture
def site_options():
    return {"rate_limits": False}


async def _user(site) -> User:
    async with site.app.extensions["push2fa"].db.session() as db:
        user: User = (await db.execute(select(User).where(User.username == "alice"))).scalar_one()
        return user


async def _count(site, model, *where) -> int:
    async with site.app.extensions["push2fa"].db.session() as db:
        return int(
            (await db.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
        )


async def _push_login(site, browser, authy_id, complete=None):
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    return await browser.post_form("/auth/2fa/complete", complete or {}, page="/auth/2fa/wait")


async def _stale_session(site, browser, authy_id) -> None:
    """Logged in through a trusted browser, on an account enrolled an hour ago: nothing in
    this session is a fresh second factor."""
    await _push_login(site, browser, authy_id, complete={"trust": "y"})
    await browser.logout()
    async with site.app.extensions["push2fa"].db.session() as db:
        await db.execute(update(User).values(push_enabled_at=utcnow() - timedelta(hours=1)))
        await db.commit()
    resp = await browser.login("alice")
    assert resp.url.path == "/"


async def _known_to_the_push_service(site, authy_id: int) -> bool:
    url = f"{site.emulator}/protected/json/users/{authy_id}/status"
    async with site.http.get(url, headers={"X-Authy-API-Key": API_KEY}) as response:
        known: bool = response.status == 200
        return known


async def _mails(site, containing: str) -> list[str]:
    outbox = Path(site.app.extensions["push2fa"].settings.instance_path) / "outbox"
    for _ in range(100):
        texts = []
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            texts.append(f"{message['Subject']}\n{message.get_content()}")
        found = [t for t in texts if containing in t]
        if found:
            return found
        await asyncio.sleep(0.05)
    return []


# --- turning 2FA off ----------------------------------------------------------------------------


async def test_stolen_cookie_and_password_cannot_turn_2fa_off(site, enrolled):
    browser, authy_id = enrolled
    await _stale_session(site, browser, authy_id)

    # Yesterday's form: the password alone.
    resp = await browser.post_form(
        "/auth/2fa/disable", {"action": "password", "password": PASSWORD}, page="/auth/2fa/disable"
    )

    assert resp.url.path == "/auth/2fa/wait"  # it went to the phone instead
    assert (await _user(site)).push_enabled
    assert await _count(site, AuditEvent, AuditEvent.event == "twofa.disabled") == 0


async def test_2fa_off_with_a_recovery_code_from_a_stale_session_and_mailed(site, browsers):
    browser = browsers()
    await browser.register("alice")
    await browser.login("alice")
    authy_id = await browser.enable_push()
    codes = await _enrolment_codes(browser)
    await browser.logout()
    await _stale_session(site, browser, authy_id)
    assert await _known_to_the_push_service(site, authy_id)

    await browser.post_form("/auth/2fa/disable", {}, page="/auth/2fa/disable")
    await browser.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/2fa/wait")

    assert (
        '<div class="alert alert-success">Push two-factor login is now off.</div>'
        in browser.last_html
    )
    assert not (await _user(site)).push_enabled
    assert not await _known_to_the_push_service(site, authy_id)  # the phone is forgotten there too
    async with site.app.extensions["push2fa"].db.session() as db:
        off = await db.execute(select(AuditEvent).where(AuditEvent.event == "twofa.disabled"))
        assert [event.details.get("proof") for event in off.scalars()] == ["recovery"]
    assert await _mails(site, "Push two-factor login was turned off")


async def _enrolment_codes(browser) -> list[str]:
    import re

    page = await (await browser.get("/auth/2fa/enroll")).text()
    block = re.search(r'id="recovery-codes"[^>]*>(.*?)</pre>', page, re.S)
    assert block is not None
    return block.group(1).split()


# --- recovery codes ---------------------------------------------------------------------------


async def test_stolen_cookie_cannot_make_new_recovery_codes(site, enrolled):
    browser, authy_id = enrolled
    await _stale_session(site, browser, authy_id)
    before = await _count(site, RecoveryCode)

    resp = await browser.post_form("/account/recovery-codes", {}, page="/account/security")

    assert resp.url.path == "/auth/2fa/wait"
    assert await _count(site, RecoveryCode) == before
    assert 'id="recovery-codes"' not in browser.last_html


async def test_stolen_login_cookie_next_to_the_attackers_fresh_session_makes_no_codes(
    site, enrolled, browsers
):
    """Mallory has her own account with 2FA and has just logged in with her own phone; she
    puts Alice's stolen login cookie next to her own fresh session cookie."""
    alice, alice_authy = enrolled
    await _stale_session(site, alice, alice_authy)
    mallory = browsers()
    await mallory.register("mallory")
    await mallory.login("mallory")
    mallory_authy = await mallory.enable_push()
    await mallory.logout()
    await mallory.login("mallory")
    request = await site.wait_for_request(mallory_authy)
    await site.decide(request["uuid"], "approved", mallory.match_code())
    await mallory.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    await mallory.get("/account/security")  # her own page: a CSRF token of her session
    token = csrf_from(mallory.last_html)
    stolen = next(c for c in alice.http.cookie_jar if c.key == "push2fa_auth")
    mallory.http.cookie_jar.update_cookies({"push2fa_auth": stolen.value}, URL(site.url))
    alice_id = (await _user(site)).id
    before = await _count(site, RecoveryCode, RecoveryCode.user_id == alice_id)

    resp = await mallory.http.post(f"{site.url}/account/recovery-codes", data={"csrf_token": token})

    assert 'id="recovery-codes"' not in await resp.text()
    assert await _count(site, RecoveryCode, RecoveryCode.user_id == alice_id) == before
    assert (
        await _count(
            site,
            AuditEvent,
            AuditEvent.event == "recovery_codes.generated",
            AuditEvent.user_id == alice_id,
        )
        == 0
    )


async def test_new_recovery_codes_after_a_push_are_mailed(site, enrolled):
    browser, authy_id = enrolled
    await _stale_session(site, browser, authy_id)
    await browser.post_form("/account/recovery-codes", {}, page="/account/security")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/account/security"
    assert (
        '<div class="alert alert-success">Confirmed. You can now make the change.</div>'
        in browser.last_html
    )
    # The spent request is let go: no waiting page for it any more.
    assert (await browser.get("/auth/2fa/wait")).url.path != "/auth/2fa/wait"

    await browser.post_form("/account/recovery-codes", {}, page="/account/security")

    assert 'id="recovery-codes"' in browser.last_html
    assert await _mails(site, "New recovery codes were made")


# --- password change ----------------------------------------------------------------------------


async def test_stolen_cookie_and_password_cannot_change_the_password(site, enrolled):
    browser, authy_id = enrolled
    await _stale_session(site, browser, authy_id)
    before = (await _user(site)).password_hash

    await browser.get("/account/password")
    assert 'id="step-up"' in browser.last_html and 'id="change-password"' not in browser.last_html
    resp = await browser.post_form(
        "/account/password",
        {"current": PASSWORD, "password": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert resp.status == 400
    assert (await _user(site)).password_hash == before


async def test_password_change_after_confirming_on_the_phone_is_mailed(site, enrolled, browsers):
    browser, authy_id = enrolled
    await _stale_session(site, browser, authy_id)
    elsewhere = browsers()
    await _push_login(site, elsewhere, authy_id)
    await browser.post_form("/account/confirm", {"back": "password"}, page="/account/password")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/account/password"

    await browser.post_form(
        "/account/password",
        {"current": PASSWORD, "password": NEW_PASSWORD, "password2": NEW_PASSWORD},
        page="/account/password",
    )

    assert "has been changed" in browser.last_html
    assert "Hello, alice" in await (await browser.get("/")).text()
    assert "Hello, alice" not in await (await elsewhere.get("/")).text()
    assert await _mails(site, "Your password was changed")


async def test_confirm_returns_only_to_the_pages_that_ask(site, enrolled):
    browser, authy_id = enrolled
    await _stale_session(site, browser, authy_id)

    resp = await browser.post_form(
        "/account/confirm", {"back": "https://evil.example/"}, page="/account/password"
    )

    assert resp.url.path == "/account/security"
    assert await _count(site, AuditEvent, AuditEvent.event == "push.created") == 1
