"""With PUSH2FA_PASSKEYS_ALLOW_SYNCED=0, a synced passkey is refused and nothing is stored."""

# ruff: noqa: F811
from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import browser_required
from tests.web.passkeys.conftest import Site, VirtualAuthenticator

if not browser_required():
    pytest.importorskip("playwright", reason="the playwright package is not installed")
from playwright.async_api import expect  # noqa: E402

from tests.web.passkeys.flows import PASSWORD, logged_in, password_step, register  # noqa: E402


@pytest.fixture
def site_settings() -> dict[str, Any]:
    return {"passkeys_allow_synced": False}


async def test_a_synced_passkey_is_refused_when_only_device_bound_ones_are_allowed(
    open_page: Any, site: Site
) -> None:
    page = await open_page("user")
    await VirtualAuthenticator.attach(page, defaultBackupEligibility=True, defaultBackupState=True)
    await register(page, site.url)
    await password_step(page, site.url)
    await logged_in(page)
    await page.goto(f"{site.url}/passkeys/")
    await page.get_by_label("Your password").fill(PASSWORD)
    await page.get_by_role("button", name="Add passkey").click()
    await expect(page.get_by_text("only device-bound passkeys")).to_be_visible()
    assert await site.passkeys() == []
