"""Sessions in a real browser: the security page lists where the user is logged in, "Log
out everywhere else" really ends the other browser, and cookies copied out of a browser
before it logged out are refused in another one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import PageWatch, browser_required

if not browser_required():
    pytest.importorskip("playwright", reason="the playwright package is not installed")
from playwright.async_api import Page, expect  # noqa: E402

USERNAME = "alice"
PASSWORD = "correct horse battery"


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
    await expect(page.get_by_text(f"Hello, {USERNAME}!")).to_be_visible()


async def test_log_out_everywhere_else_ends_the_other_browser(
    site: str, open_page: Any, page_watch: PageWatch, screenshot: Any
):
    laptop = await open_page("laptop")
    other = await open_page("other")
    await register(laptop, site)
    await log_in(other, site)
    await log_in(laptop, site)

    await laptop.goto(f"{site}/account/security")
    rows = laptop.locator("#sessions-table tbody tr")
    await expect(rows).to_have_count(2)
    await expect(laptop.locator("#sessions-table .this-session")).to_contain_text("this browser")
    await screenshot(laptop, "sessions")
    await laptop.get_by_role("button", name="Log out everywhere else").click()
    await expect(laptop.get_by_text("1 session logged out.")).to_be_visible()
    await expect(rows).to_have_count(1)

    await other.goto(f"{site}/account/security")
    await expect(other.get_by_role("heading", name="Log in")).to_be_visible()
    await laptop.goto(f"{site}/")
    await expect(laptop.get_by_text(f"Hello, {USERNAME}!")).to_be_visible()
    page_watch.assert_clean()


async def test_cookies_copied_before_logout_do_not_log_in_another_browser(
    site: str, open_page: Any, page_watch: PageWatch
):
    victim = await open_page("victim")
    await register(victim, site)
    await log_in(victim, site)
    stolen = await victim.context.cookies()
    await victim.get_by_role("button", name="Log out").click()
    await expect(victim.get_by_text("You have been logged out.")).to_be_visible()

    thief = await open_page("thief")
    await thief.context.add_cookies(stolen)
    await thief.goto(f"{site}/account/security")

    await expect(thief.get_by_role("heading", name="Log in")).to_be_visible()
    page_watch.assert_clean()
