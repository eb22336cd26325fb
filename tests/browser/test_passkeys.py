"""Passkeys as a new user meets them, in real pages, with Chromium's virtual authenticator.

The user's browser is opened at ``http://localhost:PORT`` (WebAuthn refuses IP addresses).
A passkey-only account, then an account with push and a passkey side by side.
"""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested by name)
from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import PageWatch, browser_required
from tests.web.passkeys.conftest import Site, VirtualAuthenticator, site, site_settings  # noqa: F401  (fixtures)

if not browser_required():
    pytest.importorskip("playwright", reason="the playwright package is not installed")
from playwright.async_api import expect  # noqa: E402

from tests.web.passkeys.flows import (  # noqa: E402
    USERNAME,
    WAIT_PAGE,
    add_passkey,
    log_out,
    logged_in,
    new_user_with_passkey,
    password_step,
)

NO_AUTOFILL = "PublicKeyCredential.isConditionalMediationAvailable = async () => false;"


async def test_passkey_story_and_screenshots(
    open_page: Any, site: Site, page_watch: PageWatch, screenshot: Any
) -> None:
    user = await open_page("user")
    await user.context.add_init_script(NO_AUTOFILL)
    await VirtualAuthenticator.attach(user)

    # 1. A new account adds a passkey from the security page.
    await new_user_with_passkey(user, site.url)
    await password_step(user, site.url)
    await expect(user).to_have_url(WAIT_PAGE)
    await screenshot(user, "passkey-wait")
    await user.get_by_role("button", name="Use a passkey or security key").click()
    await logged_in(user)
    await user.get_by_role("link", name="Security").click()
    await expect(user.locator("#passkeys-summary")).to_contain_text("1 passkey can sign you in")
    await user.get_by_role("link", name="Manage passkeys").click()
    await user.get_by_label("Name").first.fill("Work laptop")
    await user.get_by_role("button", name="Rename").click()
    await expect(user.get_by_text("Passkey renamed.")).to_be_visible()
    await expect(user.get_by_role("cell", name="Device-bound")).to_be_visible()
    await screenshot(user, "passkeys")
    await log_out(user)

    # 2. Sign in with the passkey alone: no password, no push.
    await user.goto(f"{site.url}/auth/login")
    await screenshot(user, "passkey-login")
    await user.get_by_role("button", name="Sign in with a passkey").click()
    await expect(user.get_by_role("heading", name=f"Hello, {USERNAME}!")).to_be_visible()
    page_watch.assert_clean()


async def test_a_synced_passkey_is_shown_as_synced(open_page: Any, site: Site) -> None:
    user = await open_page("user")
    await user.context.add_init_script(NO_AUTOFILL)
    await VirtualAuthenticator.attach(user, defaultBackupEligibility=True, defaultBackupState=True)
    await new_user_with_passkey(user, site.url)
    await password_step(user, site.url)
    await user.get_by_role("button", name="Use a passkey or security key").click()
    await logged_in(user)
    await user.goto(f"{site.url}/passkeys/")
    await expect(user.get_by_role("cell", name="Synced")).to_be_visible()


async def test_with_push_on_the_passkey_is_offered_beside_the_push(
    open_page: Any, site: Site, page_watch: PageWatch, screenshot: Any
) -> None:
    user = await open_page("user")
    await user.context.add_init_script(NO_AUTOFILL)
    phone = await open_page("phone", width=480, height=800)
    await VirtualAuthenticator.attach(user)
    await new_user_with_passkey(user, site.url)
    await password_step(user, site.url)
    await user.get_by_role("button", name="Use a passkey or security key").click()
    await logged_in(user)

    # Turn on push (the emulator's phone page scans the code).
    await user.goto(f"{site.url}/")
    await user.get_by_role("link", name="Turn on push two-factor login").click()
    await user.get_by_role("button", name="Start").click()
    phone_link = await user.locator("#phone-link").get_attribute("href")
    assert phone_link
    await phone.goto(phone_link)
    await expect(phone.get_by_text("Account added to this phone.")).to_be_visible()
    await expect(user.get_by_role("heading", name="Push two-factor login is on")).to_be_visible(
        timeout=10_000
    )
    await log_out(user)

    # The push goes out, and the passkey answers instead.
    await password_step(user, site.url)
    await expect(user).to_have_url(WAIT_PAGE)
    await expect(user.locator("#match-code")).to_have_text(re.compile(r"^\d\d$"))
    await expect(user.locator("#passkey-first")).to_have_count(0)
    await screenshot(user, "passkey-beside-push")
    await user.get_by_role("button", name="Use a passkey or security key").click()
    await logged_in(user)
    statuses = [c[1:] for c in await site.challenges()]
    assert statuses[-1] == ("consumed", "passkey")
    page_watch.assert_clean()


async def test_removing_every_passkey_leaves_the_password_and_push_path(
    open_page: Any, site: Site
) -> None:
    """Recovery: losing the passkeys does not lock out; the account logs in as before."""
    user = await open_page("user")
    await user.context.add_init_script(NO_AUTOFILL)
    await VirtualAuthenticator.attach(user)
    await new_user_with_passkey(user, site.url)
    await password_step(user, site.url)
    await user.get_by_role("button", name="Use a passkey or security key").click()
    await logged_in(user)
    await user.goto(f"{site.url}/passkeys/")
    await user.get_by_role("button", name="Remove").click()
    await expect(user.get_by_text("No passkey yet.")).to_be_visible()
    await log_out(user)
    await password_step(user, site.url)  # no second factor left: the password logs in
    await logged_in(user)
    await add_passkey(user, site.url, "again")  # and the password lets a new one in
