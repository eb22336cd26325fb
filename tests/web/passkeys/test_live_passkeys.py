"""Passkeys in a real browser against the real app: what works, and every attack on it.

Each attack compares the passkey and login-challenge rows before and after: a refused
answer changes nothing but the single-use ceremony it spent.
"""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested by name)
from __future__ import annotations

from typing import Any

import pytest

from push2fa.models import Passkey
from tests.browser.conftest import browser_required
from tests.web.passkeys.conftest import Site, VirtualAuthenticator

if not browser_required():
    pytest.importorskip("playwright", reason="the playwright package is not installed")
from playwright.async_api import Page, expect  # noqa: E402

from tests.web.auth.mailbox import outbox_messages  # noqa: E402
from tests.web.passkeys.flows import (  # noqa: E402
    WAIT_PAGE,
    add_passkey,
    capture_posts,
    csrf,
    log_out,
    logged_in,
    new_user_with_passkey,
    password_step,
    post_form,
)

# Chromium's virtual authenticator answers a conditional (autofill) request at once, as
# if the user had picked the passkey; tests of the other paths switch autofill off.
NO_AUTOFILL = "PublicKeyCredential.isConditionalMediationAvailable = async () => false;"


@pytest.fixture
async def browser(open_page: Any, site: Site) -> tuple[Page, VirtualAuthenticator]:
    page = await open_page("user")
    await page.context.add_init_script(NO_AUTOFILL)
    authenticator = await VirtualAuthenticator.attach(page)
    return page, authenticator


async def test_autofill_offers_the_passkey_on_the_login_page(open_page: Any, site: Site) -> None:
    """Conditional UI: the username field offers the passkey; choosing it signs in."""
    page = await open_page("user")
    await VirtualAuthenticator.attach(page)
    await new_user_with_passkey(page, site.url)
    await page.goto(f"{site.url}/auth/login")
    await logged_in(page)  # the virtual authenticator picks the offered passkey at once
    login = (await site.events("login.succeeded"))[-1]
    assert login.details["second_factor"] == "passkey"


async def sign_in_with_passkey(page: Page, site: Site) -> None:
    await page.goto(f"{site.url}/auth/login")
    await page.get_by_role("button", name="Sign in with a passkey").click()


async def test_a_new_user_adds_a_passkey_and_logs_in_with_password_and_passkey(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    page, _ = browser
    await new_user_with_passkey(page, site.url)
    [key] = await site.rows(Passkey)
    assert key.name == "alice's laptop" and not key.synced and key.last_used_at is None
    subjects = [m["Subject"] for m in outbox_messages(site.instance)]
    assert "A passkey was added to your push2fa account" in subjects

    await password_step(page, site.url)
    await expect(page).to_have_url(WAIT_PAGE)
    await expect(page.locator("#passkey-first")).to_be_visible()
    await page.get_by_role("button", name="Use a passkey or security key").click()
    await logged_in(page)
    login = (await site.events("login.succeeded"))[-1]
    assert login.details["second_factor"] == "passkey"
    assert [c[1:] for c in await site.challenges()] == [("consumed", "passkey")]
    [key] = await site.rows(Passkey)
    assert key.last_used_at is not None


async def test_passkey_sign_in_needs_no_password_and_no_push(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    page, _ = browser
    await new_user_with_passkey(page, site.url)
    await sign_in_with_passkey(page, site)
    await logged_in(page)
    assert [c[1:] for c in await site.challenges()] == [("consumed", "passkey")]
    assert (await site.events("login.password_failed")) == []


async def test_sign_in_without_user_verification_is_refused(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    page, authenticator = browser
    await new_user_with_passkey(page, site.url)
    before = (await site.passkeys(), await site.challenges())
    await authenticator.override(isBadUV=True)  # the answer says: user not verified
    await sign_in_with_passkey(page, site)
    await expect(page.get_by_text("could not be verified")).to_be_visible()
    await expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert (await site.passkeys(), await site.challenges()) == before


async def test_an_authenticator_that_cannot_verify_the_user_cannot_sign_in(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    page, authenticator = browser
    await new_user_with_passkey(page, site.url)
    before = (await site.passkeys(), await site.challenges())
    await authenticator.set_user_verified(False)  # the browser itself refuses (UV required)
    await sign_in_with_passkey(page, site)
    await expect(page.get_by_text("cancelled or timed out")).to_be_visible()
    assert (await site.passkeys(), await site.challenges()) == before


async def test_a_bogus_signature_is_refused(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    page, authenticator = browser
    await new_user_with_passkey(page, site.url)
    before = (await site.passkeys(), await site.challenges())
    await authenticator.override(isBogusSignature=True)
    await sign_in_with_passkey(page, site)
    await expect(page.get_by_text("could not be verified")).to_be_visible()
    await expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert (await site.passkeys(), await site.challenges()) == before


async def test_a_replayed_sign_in_is_refused(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    page, _ = browser
    await new_user_with_passkey(page, site.url)
    captured = await capture_posts(page, "/passkeys/sign-in")
    await sign_in_with_passkey(page, site)
    await logged_in(page)
    await log_out(page)
    before = (await site.passkeys(), await site.challenges())
    # The attacker replays the captured answer with a valid CSRF token of their own.
    await page.goto(f"{site.url}/auth/login")
    await post_form(page, "/passkeys/sign-in", {**captured[0], "csrf_token": await csrf(page)})
    await expect(page.get_by_text("expired or was already used")).to_be_visible()
    await expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert (await site.passkeys(), await site.challenges()) == before


async def test_a_replayed_answer_is_refused_by_the_sign_count_too(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    """Even if a ceremony's challenge were ever issued twice, the stored sign count
    refuses an old answer: the single-use challenge is not the only guard."""
    from push2fa.models import PasskeyCeremony, utcnow

    page, _ = browser
    await new_user_with_passkey(page, site.url)
    captured = await capture_posts(page, "/passkeys/sign-in")
    await sign_in_with_passkey(page, site)
    await logged_in(page)
    await log_out(page)
    db = site.app.extensions["push2fa"].db
    async with db.session() as session:
        spent = await session.get(PasskeyCeremony, captured[0]["ceremony"])
        assert spent is not None and spent.used_at is not None
        session.add(
            PasskeyCeremony(
                id="reissued",
                purpose="sign_in",
                challenge=spent.challenge,
                created_at=utcnow(),
                expires_at=spent.expires_at.replace(year=spent.expires_at.year + 1),
            )
        )
        await session.commit()
    before = (await site.passkeys(), await site.challenges())
    await page.goto(f"{site.url}/auth/login")
    await post_form(
        page,
        "/passkeys/sign-in",
        {**captured[0], "ceremony": "reissued", "csrf_token": await csrf(page)},
    )
    await expect(page.get_by_text("could not be verified")).to_be_visible()
    assert (await site.passkeys(), await site.challenges()) == before


async def test_a_passkey_of_another_account_does_not_answer_a_login(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    page, _ = browser
    await new_user_with_passkey(page, site.url, "bob")
    bob_key = (await site.passkeys())[0][2]
    await new_user_with_passkey(page, site.url, "alice")
    await password_step(page, site.url, "alice")
    await expect(page).to_have_url(WAIT_PAGE)
    # The URL is the wait page's as soon as it is committed; its form may not be parsed yet.
    await page.locator("#passkey-second-factor").wait_for(state="attached")
    before = (await site.passkeys(), await site.challenges())
    # Alice's login, answered by Bob's passkey (the same authenticator holds both).
    await page.evaluate(
        """async (bobKey) => {
          const form = document.getElementById("passkey-second-factor");
          const body = new FormData();
          body.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
          const data = await (await fetch(form.dataset.optionsUrl, {method: "POST", body})).json();
          data.publicKey.allowCredentials = [{type: "public-key", id: bobKey}];
          const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(data.publicKey);
          const credential = await navigator.credentials.get({publicKey});
          form.querySelector("input[name=ceremony]").value = data.ceremony;
          form.querySelector("input[name=credential]").value = JSON.stringify(credential.toJSON());
          HTMLFormElement.prototype.submit.call(form);
        }""",
        bob_key,
    )
    await expect(page.get_by_text("not registered for this account")).to_be_visible()
    await expect(page).to_have_url(WAIT_PAGE)
    assert (await site.passkeys(), await site.challenges()) == before
    assert before[1][-1][1] == "pending"


async def test_a_removed_passkey_no_longer_signs_in(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    page, authenticator = browser
    await new_user_with_passkey(page, site.url)
    await sign_in_with_passkey(page, site)
    await logged_in(page)
    await page.goto(f"{site.url}/passkeys/")
    await page.get_by_role("button", name="Remove").click()
    await expect(page.get_by_text("Passkey removed.")).to_be_visible()
    assert await site.passkeys() == []
    assert "A passkey was removed from your push2fa account" in [
        m["Subject"] for m in outbox_messages(site.instance)
    ]
    await log_out(page)
    assert len(await authenticator.credentials()) == 1  # still on the device
    before = await site.challenges()
    await sign_in_with_passkey(page, site)
    await expect(page.get_by_text("not registered for this account")).to_be_visible()
    await expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert await site.challenges() == before


async def test_an_answer_made_on_another_origin_is_refused(
    browser: tuple[Page, VirtualAuthenticator], site: Site, blank_origin: str
) -> None:
    """A phishing page on another origin (same rpId, so the browser lets it ask) relays
    the site's challenge; the answer names the phishing origin and is refused."""
    page, _ = browser
    await new_user_with_passkey(page, site.url)
    await page.goto(f"{site.url}/auth/login")
    token = await csrf(page)
    options = await page.evaluate(
        """async (token) => {
          const body = new FormData(); body.append("csrf_token", token);
          return await (await fetch("/passkeys/sign-in/options", {method: "POST", body})).json();
        }""",
        token,
    )
    await page.goto(blank_origin)
    answer = await page.evaluate(
        """async (options) => {
          const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
          return (await navigator.credentials.get({publicKey})).toJSON();
        }""",
        options["publicKey"],
    )
    before = (await site.passkeys(), await site.challenges())
    await page.goto(f"{site.url}/auth/login")
    import json

    await post_form(
        page,
        "/passkeys/sign-in",
        {
            "csrf_token": await csrf(page),
            "ceremony": options["ceremony"],
            "credential": json.dumps(answer),
        },
    )
    await expect(page.get_by_text("could not be verified")).to_be_visible()
    await expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert (await site.passkeys(), await site.challenges()) == before


async def test_a_security_key_is_added_after_logging_in_with_the_first_passkey(
    browser: tuple[Page, VirtualAuthenticator], site: Site
) -> None:
    page, authenticator = browser
    await new_user_with_passkey(page, site.url)
    await password_step(page, site.url)
    await page.get_by_role("button", name="Use a passkey or security key").click()
    await logged_in(page)
    # A USB security key now (the laptop's authenticator already holds a passkey here).
    await authenticator.cdp.send(
        "WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator.id}
    )
    await VirtualAuthenticator.attach(page, transport="usb", hasResidentKey=False)
    await add_passkey(page, site.url, "blue key", password=False)
    assert [p[4] for p in await site.passkeys()] == ["alice's laptop", "blue key"]
