"""The whole story of a new user, in real pages with real clicks, in a real browser.

Two browser contexts: the user's computer and the user's phone, the push2fa Approver with
a CDP virtual authenticator (a passkey with user verification), as on one laptop with a
second window. The site is at http://localhost:PORT: WebAuthn refuses IP addresses.
The test only clicks and types; every page change after the phone's answer is the app's
own doing, pushed over Socket.IO. A page is marked when the test starts waiting on it, and
the mark is still there afterwards only if nothing reloaded or left the page.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from tests.browser.conftest import PageWatch, browser_required
from tests.pushservice.approver.conftest import VirtualAuthenticator

if not browser_required():  # where a browser is required, a missing package fails
    pytest.importorskip("playwright", reason="the playwright package is not installed")
from playwright.async_api import Locator, Page, expect  # noqa: E402

USERNAME = "alice"
PASSWORD = "correct horse battery"
WAIT_PAGE = re.compile(r"/auth/2fa/wait$")
LIVE = 10_000  # ms: the longest a live update may take before the test fails

# Timestamps the pages take themselves (one machine, one clock): the tap on the phone, the
# waiting page showing "approved" (kept across its navigation), the home page being ready.
RECORD_TAP = "addEventListener('click', () => { window.__tappedAt = Date.now(); }, true)"
RECORD_APPROVED = """
const approved = document.getElementById("state-approved");
new MutationObserver((_, observer) => {
  if (!approved.hidden) {
    sessionStorage.setItem("approvedAt", String(Date.now()));
    observer.disconnect();
  }
}).observe(approved, { attributes: true });
"""
HOME_READY = (
    "performance.timeOrigin"
    " + performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
)


async def register(page: Page, site: str) -> None:
    await page.goto(f"{site}/auth/register")
    await page.get_by_label("Username").fill(USERNAME)
    await page.get_by_label("Email").fill(f"{USERNAME}@example.com")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Repeat password").fill(PASSWORD)
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()


async def log_in(page: Page, site: str) -> None:
    await page.goto(f"{site}/auth/login")
    await page.get_by_label("Username or email").fill(USERNAME)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()


async def log_in_with_push(page: Page, site: str) -> str:
    """Password step; returns the number the waiting page asks to pick on the phone."""
    await log_in(page, site)
    await expect(page).to_have_url(WAIT_PAGE)
    code = page.locator("#match-code")
    await expect(code).to_have_text(re.compile(r"^\d\d$"))
    return await code.inner_text()


async def log_out(page: Page) -> None:
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_text("You have been logged out.")).to_be_visible()


async def recovery_codes(page: Page) -> list[str]:
    codes = (await page.locator("#recovery-codes").inner_text()).split()
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    return codes


async def mark_untouched(page: Page) -> None:
    await page.evaluate("window.__untouchedByTest = true")


async def assert_untouched(page: Page) -> None:
    assert await page.evaluate("window.__untouchedByTest === true"), "the page was reloaded"


# A request card in the Approver, or on the development phone (other tests still use it).
REQUEST_CARD = "article[data-uuid], .request-card"


async def request_on_phone(phone: Page) -> Locator:
    """The one pending request, as it arrives live on the phone."""
    card = phone.locator(REQUEST_CARD)
    await expect(card).to_have_count(1, timeout=LIVE)
    return card


async def answer_on_phone(phone: Page, button: Locator) -> None:
    """Tap a button; the passkey (virtual authenticator) signs the decision."""
    await button.click()
    await expect(phone.locator(REQUEST_CARD)).to_have_count(0, timeout=LIVE)


def server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


async def test_full_story(
    open_page: Any,
    localhost_site: str,
    page_watch: PageWatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    site = localhost_site
    user = await open_page("user")
    phone = await open_page("phone", width=390, height=844)
    authenticator = await VirtualAuthenticator.attach(phone)

    # 1. Register, log in with the password only, turn on push two-factor login.
    await register(user, site)
    await log_in(user, site)
    await expect(user.get_by_role("heading", name=f"Hello, {USERNAME}!")).to_be_visible()
    await user.get_by_role("link", name="Turn on push two-factor login").click()
    await user.get_by_role("button", name="Start").click()
    await expect(user.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    approver_link = await user.locator("#approver-link").get_attribute("href")
    assert approver_link and approver_link.startswith(f"{site}/_emulator/approver/#t=")

    await phone.goto(approver_link)  # the phone "scans" the code
    await phone.locator("#enrol-button").click()  # a passkey, with user verification
    await expect(phone.get_by_text("This phone is added")).to_be_visible(timeout=LIVE)
    assert "#t=" not in phone.url
    assert len(await authenticator.credentials()) == 1
    on = user.get_by_role("heading", name="Push two-factor login is on")
    await expect(on).to_be_visible(timeout=LIVE)
    first_codes = await recovery_codes(user)

    # 2. New recovery codes from the Security page, then log out.
    await user.get_by_role("link", name="Security").click()
    await user.get_by_role("button", name=re.compile("recovery codes")).click()
    codes = await recovery_codes(user)
    assert not set(codes) & set(first_codes)
    await user.get_by_role("link", name="Done").click()
    await expect(user.get_by_text("10 unused recovery codes.")).to_be_visible()
    phones = user.locator("#phones-list > li")
    await expect(phones).to_have_count(1)
    await expect(phones).to_contain_text("passkey")
    await expect(user.get_by_text("New phone added")).to_be_visible()
    await log_out(user)

    # 3. Log in: the phone shows the request live; typing the number and approving (signed
    # with the passkey) logs the user in.
    await mark_untouched(phone)
    code = await log_in_with_push(user, site)
    card = await request_on_phone(phone)
    await expect(card).to_contain_text(USERNAME)
    await card.locator(".number-input").fill(code)
    await assert_untouched(phone)

    await phone.evaluate(RECORD_TAP)
    await user.evaluate(RECORD_APPROVED)
    await card.locator(".approve-button").click()
    await user.wait_for_url(lambda url: "/auth/2fa/" not in url, timeout=LIVE)
    await expect(user.get_by_role("heading", name=f"Hello, {USERNAME}!")).to_be_visible()
    tapped = await phone.evaluate("window.__tappedAt")
    approved = float(await user.evaluate("sessionStorage.getItem('approvedAt')"))
    home_ready = await user.evaluate(HOME_READY)
    with capsys.disabled():
        print(
            f"\n[browser] phone tap -> waiting page shows approved: {approved - tapped:.0f} ms,"
            f" -> logged-in home page ready: {home_ready - tapped:.0f} ms"
        )
    await log_out(user)

    # 4. A wrong number, a plain Deny, and Report: each shows live on the waiting page.
    code = await log_in_with_push(user, site)
    await mark_untouched(user)
    card = await request_on_phone(phone)
    await card.locator(".number-input").fill(f"{(int(code) + 1) % 100:02d}")
    await answer_on_phone(phone, card.locator(".approve-button"))
    await expect(user.locator("#denied-wrong-number")).to_be_visible(timeout=LIVE)
    await expect(user.locator("#denied-wrong-number")).to_contain_text("did not match")
    await assert_untouched(user)

    await log_in_with_push(user, site)
    await mark_untouched(user)
    card = await request_on_phone(phone)
    await answer_on_phone(phone, card.locator(".deny-button"))
    await expect(user.get_by_text("Request denied on your phone")).to_be_visible(timeout=LIVE)
    await expect(user.locator("#denied-wrong-number")).to_be_hidden()
    await assert_untouched(user)

    await log_in_with_push(user, site)
    await mark_untouched(user)
    card = await request_on_phone(phone)
    await card.locator(".report-button").click()
    await expect(phone.get_by_text("Reported")).to_be_visible(timeout=LIVE)
    await expect(user.locator("#state-denied")).to_be_visible(timeout=LIVE)
    await assert_untouched(user)
    await log_in(user, site)  # the account now refuses to push for a while
    await expect(user.get_by_text("reported as not yours")).to_be_visible()
    await expect(phone.locator(REQUEST_CARD)).to_have_count(0)
    await assert_untouched(phone)  # every request reached the phone live

    page_watch.assert_clean()
    assert server_errors(caplog) == []
