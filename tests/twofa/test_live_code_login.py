"""Logging in with a code, attacked by the page's own completion: one decision, one
completion, whichever way the answer came; a recovery code spent only with its login."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from push2fa.models import AuditEvent, LoginChallenge, RecoveryCode, utcnow
from tests.twofa.conftest import Browser

REPEATS = 20


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


async def _with_the_page_listening(browser: Browser, submit_code) -> None:
    """Submit a code while the waiting page listens, completing on "approved" as it does."""
    await browser.connect()

    async def page() -> None:
        try:
            await browser.wait_status("challenge", "approved", timeout=1.5)
        except TimeoutError:
            return
        await browser.http.post(
            browser.site.url + "/auth/2fa/complete",
            data={
                "csrf_token": re.search(
                    r'name="csrf_token"[^>]*value="([^"]+)"', browser.last_html
                ).group(1)
            },
        )

    await asyncio.gather(page(), submit_code())
    for sock in browser.sockets:
        await sock.disconnect()
    browser.sockets.clear()


async def test_recovery_code_logins_win_the_race_with_the_page_every_time(site, alice):
    browser, _, codes = alice
    for attempt in range(REPEATS):
        await browser.login("alice")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', browser.last_html).group(1)
        code = codes.pop()

        async def submit(code=code, token=token) -> None:
            await browser.http.post(
                site.url + "/auth/2fa/recovery", data={"csrf_token": token, "code": code}
            )

        await _with_the_page_listening(browser, submit)
        assert await _logged_in(browser), f"attempt {attempt}: not logged in"
        if not codes:  # a fresh set, while the code login counts as a fresh second factor
            await browser.post_form("/account/recovery-codes", {}, page="/account/security")
            block = re.search(r'id="recovery-codes"[^>]*>(.*?)</pre>', browser.last_html, re.S)
            codes = block.group(1).split()
        await browser.logout()
    async with site.app.extensions["push2fa"].db.session() as db:
        spent = (
            await db.execute(select(func.count()).where(AuditEvent.event == "recovery_code.used"))
        ).scalar_one()
    assert spent == REPEATS  # each code spent once, by its own login


async def test_a_recovery_code_is_not_spent_when_the_login_cannot_happen(site, alice):
    browser, _, codes = alice
    await browser.login("alice")
    async with site.app.extensions["push2fa"].db.session() as db:  # past its time, unswept
        await db.execute(update(LoginChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
        await db.commit()
    await browser.post_form("/auth/2fa/recovery", {"code": codes[0]}, page="/auth/2fa/wait")
    assert not await _logged_in(browser)
    assert await _unused_codes(site) == 10


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
            await db.execute(select(func.count()).where(AuditEvent.event == "login.succeeded"))
        ).scalar_one()
    assert logins == 2  # the enrolment's login and this one: completed once


async def test_dont_ask_again_is_honoured_with_a_code(site, alice):
    browser, _, codes = alice
    await browser.login("alice")
    resp = await browser.post_form(
        "/auth/2fa/recovery", {"code": codes[0], "trust": "y"}, page="/auth/2fa/wait"
    )
    assert resp.url.path == "/"
    assert any(c.key == "push2fa_trusted" for c in browser.http.cookie_jar)
    await browser.logout()
    resp = await browser.login("alice")
    assert resp.url.path == "/"  # no push, no code: this browser is trusted
