"""Code logins as a person clicks them (issue #9 §2): the code-login race repeated, the
trust box with a code, Cancel and a refused Resend that keep the budget and the live
request, and turning 2FA off and on again."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from push2fa.web.app import create_app
from push2fa.web.stack import build_asgi
from tests.browser.conftest import PageWatch, browser_required
from tests.conftest import TEST_SECRET
from tests.servers import reserve_listener, serve_asgi, url_of

if not browser_required():
    pytest.importorskip("playwright", reason="the playwright package is not installed")
from playwright.async_api import Page, expect  # noqa: E402

from tests.browser.test_story import (  # noqa: E402
    LIVE,
    USERNAME,
    WAIT_PAGE,
    log_in,
    log_out,
    recovery_codes,
    register,
)

REPEATS = 20


@pytest.fixture
async def site(tmp_path: Path, database_url: str) -> AsyncIterator[str]:
    """The browser tests' site, without request limits: twenty logins in a minute from one
    browser is what this module does on purpose (the limits have their own tests)."""
    listener = reserve_listener()
    url = url_of(listener)
    app = create_app(
        {
            "secret_key": TEST_SECRET,
            "instance_path": str(tmp_path / "instance"),
            "database_url": database_url,
            "bcrypt_rounds": 4,
            "public_url": url,
            "rate_limits": False,
        }
    )
    async with serve_asgi(build_asgi(app), listener=listener):
        yield url


async def enrol(user: Page, phone: Page, site: str) -> list[str]:
    """Register, turn push 2FA on with the phone page, keep the codes, log out."""
    await register(user, site)
    await log_in(user, site)
    await user.get_by_role("link", name="Turn on push two-factor login").click()
    await user.get_by_role("button", name="Start").click()
    phone_link = await user.locator("#phone-link").get_attribute("href")
    assert phone_link
    await phone.goto(phone_link)
    await expect(phone.get_by_text("Account added to this phone.")).to_be_visible()
    await expect(user.get_by_role("heading", name="Push two-factor login is on")).to_be_visible(
        timeout=LIVE
    )
    codes = await recovery_codes(user)
    await log_out(user)
    return codes


async def use_recovery_code(user: Page, code: str, trust: bool = False) -> None:
    await expect(user).to_have_url(WAIT_PAGE)
    if trust:
        await user.locator("#trust").check()
    details = user.locator("#no-phone")
    if await details.get_attribute("open") is None:
        await details.locator("summary").click()
    await user.locator("#recovery-code").fill(code)
    await user.locator("#recovery-form").get_by_role("button").click()


async def new_codes(user: Page) -> list[str]:
    await user.get_by_role("link", name="Security").click()
    await user.get_by_role("button", name=re.compile("recovery codes")).click()
    return await recovery_codes(user)


async def test_a_code_login_logs_in_every_time(
    open_page: Any, site: str, page_watch: PageWatch
) -> None:
    user = await open_page("user")
    phone = await open_page("phone", width=480)
    codes = await enrol(user, phone, site)
    for _attempt in range(REPEATS):
        await log_in(user, site)
        await use_recovery_code(user, codes.pop())
        home = user.get_by_role("heading", name=f"Hello, {USERNAME}!")
        await expect(home).to_be_visible(timeout=LIVE)
        if not codes:
            codes = await new_codes(user)
        await log_out(user)
    page_watch.assert_clean()


async def test_dont_ask_again_is_honoured_when_the_login_used_a_code(
    open_page: Any, site: str, page_watch: PageWatch
) -> None:
    user = await open_page("user")
    phone = await open_page("phone", width=480)
    codes = await enrol(user, phone, site)
    await log_in(user, site)
    await use_recovery_code(user, codes[0], trust=True)
    await expect(user.get_by_role("heading", name=f"Hello, {USERNAME}!")).to_be_visible()
    await log_out(user)
    await log_in(user, site)  # no push, no code: this browser is trusted now
    await expect(user.get_by_role("heading", name=f"Hello, {USERNAME}!")).to_be_visible()
    await expect(user).to_have_url(re.compile(r"/$"))  # never went by the waiting page
    page_watch.assert_clean()


async def test_cancel_and_a_refused_resend_keep_the_budget_and_the_live_request(
    open_page: Any, site: str, page_watch: PageWatch
) -> None:
    user = await open_page("user")
    phone = await open_page("phone", width=480)
    await enrol(user, phone, site)
    await log_in(user, site)
    await expect(user).to_have_url(WAIT_PAGE)
    await user.get_by_role("button", name="Cancel").click()
    await expect(user.get_by_text("Login cancelled.")).to_be_visible()
    for _ in range(4):  # budget 5: the cancelled one and four more
        await log_in(user, site)
        await expect(user).to_have_url(WAIT_PAGE)
        await expect(user.locator("#push-refused")).to_have_count(0)
    await user.wait_for_timeout(10_500)  # the resend interval, as the user waits
    await user.get_by_role("button", name="Resend request").click()
    await expect(user.get_by_text("Too many requests went to your phone")).to_be_visible()
    await expect(user.locator("#state-pending")).to_be_visible()  # the live one still waits
    code = await user.locator("#match-code").inner_text()
    # The cancelled requests leave the phone: only the live one is left to answer (a decoy
    # number of a stale card could otherwise equal the live code).
    await expect(phone.locator(".request-card")).to_have_count(1, timeout=LIVE)
    live = phone.locator(".request-card")
    await live.locator(f'[data-action="pick"][data-code="{code}"]').click()
    await expect(user.get_by_role("heading", name=f"Hello, {USERNAME}!")).to_be_visible(
        timeout=LIVE
    )
    page_watch.assert_clean()


async def test_turning_2fa_off_and_on_again_shows_fresh_codes_and_voids_the_old(
    open_page: Any, site: str, page_watch: PageWatch
) -> None:
    user = await open_page("user")
    phone = await open_page("phone", width=480)
    old = await enrol(user, phone, site)
    await log_in(user, site)
    await use_recovery_code(user, old[0])
    await expect(user.get_by_role("heading", name=f"Hello, {USERNAME}!")).to_be_visible()
    await user.get_by_role("link", name="Turn off push two-factor login").click()
    # Just logged in with a code: a fresh second factor, so it turns off at once.
    await user.get_by_role("button", name="Turn off now").click()
    await expect(user.get_by_text("Push two-factor login is now off.")).to_be_visible()

    await user.get_by_role("link", name="Turn on push two-factor login").click()
    await user.get_by_role("button", name="Start").click()
    phone_link = await user.locator("#phone-link").get_attribute("href")
    assert phone_link
    await phone.goto(phone_link)
    # The server learns of the enrolment by polling the push service with back-off (up to
    # 5 s between asks): allow two rounds of it on a loaded machine.
    await expect(user.get_by_role("heading", name="Push two-factor login is on")).to_be_visible(
        timeout=2 * LIVE
    )
    fresh = await recovery_codes(user)
    assert not set(fresh) & set(old)
    await log_out(user)

    await log_in(user, site)
    await use_recovery_code(user, old[1])
    await expect(user.get_by_text("That code is not right.")).to_be_visible()
    await use_recovery_code(user, fresh[0])
    await expect(user.get_by_role("heading", name=f"Hello, {USERNAME}!")).to_be_visible()
    page_watch.assert_clean()
