"""In Chromium: a login cancelled on the computer disappears from the phone page at once,
without a reload (the phone page's own Socket.IO), instead of staying pickable until expiry."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import chromium, open_page, page_watch, site  # noqa: F401
from tests.browser.test_story import (
    LIVE,
    assert_untouched,
    log_in,
    log_in_with_push,
    log_out,
    mark_untouched,
    register,
    request_on_phone,
)


async def test_a_cancelled_login_disappears_from_the_phone_page_live(
    open_page: Any,  # noqa: F811
    site: str,  # noqa: F811
) -> None:
    user = await open_page("user")
    phone = await open_page("phone", width=480, height=800)
    await register(user, site)
    await log_in(user, site)
    await user.get_by_role("link", name="Turn on push two-factor login").click()
    await user.get_by_role("button", name="Start").click()
    phone_link = await user.locator("#phone-link").get_attribute("href")
    assert phone_link
    await phone.goto(phone_link)
    await expect(user.get_by_role("heading", name="Push two-factor login is on")).to_be_visible(
        timeout=LIVE
    )
    await log_out(user)
    await expect(phone.locator("#connection")).to_have_text("live", timeout=LIVE)
    await mark_untouched(phone)

    await log_in_with_push(user, site)
    await request_on_phone(phone)
    await user.get_by_role("button", name="Cancel").click()

    await expect(phone.locator(".request-card")).to_have_count(0, timeout=LIVE)
    await assert_untouched(phone)
    await expect(user).not_to_have_url(re.compile(r"/auth/2fa/wait"))
