"""Locking out a victim, attacked: wrong passwords knowing only the username, and every
reason pushes are refused. The real user with the right password always has a way in."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import select, update

from push2fa.models import ChallengeStatus, LoginChallenge, User, utcnow
from tests.web.twofa.conftest import Browser

WRONG_PASSWORDS = 120


@pytest.fixture
def site_options():
    # The attacker's hundred tries come from many addresses; request limits are not the
    # subject here (they have their own tests), the second-factor lock is.
    return {"rate_limits": False}


@pytest.fixture
async def alice(site, browsers) -> tuple[Browser, int, list[str]]:
    """alice with push 2FA on and her recovery codes, logged out."""
    browser = browsers()
    await browser.register("alice")
    await browser.login("alice")
    authy_id = await browser.enable_push()
    await browser.post_form("/account/recovery-codes", {}, page="/account/security")
    block = re.search(r'id="recovery-codes"[^>]*>(.*?)</pre>', browser.last_html, re.S)
    assert block, browser.last_html[:300]
    await browser.logout()
    return browser, authy_id, block.group(1).split()


async def _user(site) -> User:
    async with site.app.extensions["push2fa"].db.session() as db:
        user: User = (await db.execute(select(User).where(User.username == "alice"))).scalar_one()
        return user


async def test_wrong_passwords_never_lock_the_victims_second_factor(site, alice, browsers):
    victim, authy_id, _ = alice
    attacker = browsers()
    await attacker.get("/auth/login")

    async def guess(n: int) -> None:
        await attacker.post_form("/auth/login", {"login": "alice", "password": f"guess {n}"})

    for batch in range(0, WRONG_PASSWORDS, 20):
        await asyncio.gather(*(guess(n) for n in range(batch, batch + 20)))
    user = await _user(site)
    assert user.failed_attempts == 0 and user.second_factor_locked_at is None

    resp = await victim.login("alice")
    assert resp.url.path == "/auth/2fa/wait" and 'id="push-refused"' not in victim.last_html
    assert len(await site.pending_requests(authy_id)) == 1  # the real user's push went out


async def _spend_budget(site, browser, authy_id) -> None:
    for _ in range(site.app.extensions["push2fa"].settings.push_budget):
        await browser.login("alice")
        await browser.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")


async def _report(site, browser, authy_id) -> None:
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await site.control(
        "POST", f"/requests/{request['uuid']}", json={"status": "denied", "reason": "reported"}
    )
    for _ in range(100):
        if (await _user(site)).push_blocked_until is not None:
            return
        await asyncio.sleep(0.05)


async def _lock(site, browser, authy_id) -> None:
    limit = site.app.extensions["push2fa"].settings.max_failed_attempts
    async with site.app.extensions["push2fa"].db.session() as db:
        await db.execute(update(User).values(failed_attempts=limit - 1))
        await db.commit()
    await browser.login("alice")
    await browser.post_form("/auth/2fa/totp", {"code": "0000000"}, page="/auth/2fa/wait")
    assert (await _user(site)).second_factor_locked_at is not None


REFUSALS = {
    "budget": (_spend_budget, "Too many requests went to your phone"),
    "reported": (_report, "reported as not yours"),
    "locked": (_lock, "locked after too many failed attempts"),
}


@pytest.mark.parametrize("reason", list(REFUSALS))
async def test_when_pushes_are_refused_a_recovery_code_still_logs_in(site, alice, browsers, reason):
    victim, authy_id, codes = alice
    attacker = browsers()
    refuse, message = REFUSALS[reason]
    await refuse(site, attacker, authy_id)
    pushed = len(await site.pending_requests(authy_id))

    resp = await victim.login("alice")
    assert resp.url.path == "/auth/2fa/wait"
    assert message in victim.last_html and 'id="push-refused"' in victim.last_html
    assert len(await site.pending_requests(authy_id)) == pushed  # no push went out
    resp = await victim.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/2fa/wait")
    assert resp.url.path in {"/", "/account/password"}, victim.last_html[:400]
    home = await victim.get("/account/password" if reason == "reported" else "/")
    assert home.status == 200 and "Log out" in victim.last_html


@pytest.mark.parametrize("reason", ["budget", "reported"])
async def test_when_pushes_are_refused_an_app_code_still_logs_in(site, alice, browsers, reason):
    victim, authy_id, _ = alice
    refuse, _message = REFUSALS[reason]
    await refuse(site, browsers(), authy_id)
    await victim.login("alice")
    assert 'id="totp-form"' in victim.last_html
    _, body = await site.control("GET", f"/devices/{authy_id}/totp")
    resp = await victim.post_form("/auth/2fa/totp", {"code": body["code"]}, page="/auth/2fa/wait")
    assert resp.url.path in {"/", "/account/password"}, victim.last_html[:400]


async def test_a_recovery_code_login_lifts_the_lock(site, alice, browsers):
    victim, authy_id, codes = alice
    await _lock(site, browsers(), authy_id)
    await victim.login("alice")
    await victim.post_form("/auth/2fa/recovery", {"code": codes[1]}, page="/auth/2fa/wait")
    user = await _user(site)
    assert user.second_factor_locked_at is None and user.failed_attempts == 0
    assert user.pushes_since_login == 0
    assert user.push_blocked_until is None or user.push_blocked_until <= utcnow()


async def test_a_locked_second_factor_takes_no_app_code_not_even_the_right_one(
    site, alice, browsers
):
    """App codes are short enough to guess: the lock is what bounds the guesses, so once it
    has closed even the right code is refused, and the page says what still works."""
    victim, authy_id, _ = alice
    await _lock(site, browsers(), authy_id)
    await victim.login("alice")
    _, body = await site.control("GET", f"/devices/{authy_id}/totp")

    resp = await victim.post_form("/auth/2fa/totp", {"code": body["code"]}, page="/auth/2fa/wait")

    assert resp.url.path == "/auth/2fa/wait"
    assert (
        '<div class="alert alert-danger">'
        "Two-factor login for this account is locked after too many failed attempts: "
        "codes from the app are not accepted. Use a recovery code, or reset your password."
        "</div>"
    ) in victim.last_html
    assert "Log out" not in await (await victim.get("/")).text()
    assert (await _user(site)).second_factor_locked_at is not None


async def test_the_wrong_code_that_locks_also_ends_the_push_waiting_on_the_phone(
    site, alice, browsers
):
    """Once locked, nothing may be approved: the push the attacker's login sent is ended
    too, so a tired owner cannot approve it afterwards."""
    _, authy_id, _ = alice
    await _lock(site, browsers(), authy_id)
    async with site.app.extensions["push2fa"].db.session() as db:
        pushes = (await db.execute(select(LoginChallenge))).scalars().all()
    assert [(p.status, p.reason) for p in pushes] == [(ChallengeStatus.CANCELLED, "locked")]
