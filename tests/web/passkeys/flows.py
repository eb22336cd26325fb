"""What a user does with passkeys, as clicks in real pages (shared by the browser tests)."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

USERNAME = "alice"
PASSWORD = "correct horse battery"
WAIT_PAGE = re.compile(r"/auth/2fa/wait$")


async def register(page: Page, site: str, username: str = USERNAME) -> None:
    await page.goto(f"{site}/auth/register")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Email").fill(f"{username}@example.com")
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Repeat password").fill(PASSWORD)
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()


async def password_step(page: Page, site: str, username: str = USERNAME) -> None:
    await page.goto(f"{site}/auth/login")
    await page.get_by_label("Username or email").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in", exact=True).click()


async def logged_in(page: Page) -> None:
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()


async def log_out(page: Page) -> None:
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_text("You have been logged out.")).to_be_visible()


async def add_passkey(page: Page, site: str, name: str, *, password: bool = True) -> None:
    """From the passkeys page of a logged-in user with no other second factor."""
    await page.goto(f"{site}/passkeys/")
    await page.get_by_label("Name").last.fill(name)
    if password:
        await page.get_by_label("Your password").fill(PASSWORD)
    await page.get_by_role("button", name="Add passkey").click()
    await expect(page.get_by_text(f"Passkey “{name}” added.")).to_be_visible()


async def new_user_with_passkey(page: Page, site: str, username: str = USERNAME) -> None:
    """Register, log in with the password, add a passkey, log out."""
    await register(page, site, username)
    await password_step(page, site, username)
    await logged_in(page)
    await add_passkey(page, site, f"{username}'s laptop")
    await log_out(page)


async def capture_posts(page: Page, path: str) -> list[dict[str, str]]:
    """Record the form fields of every POST to ``path`` (the answers an attacker could
    capture on the wire), letting them through."""
    seen: list[dict[str, str]] = []

    async def record(route: Any) -> None:
        from urllib.parse import parse_qsl

        seen.append(dict(parse_qsl(route.request.post_data or "")))
        await route.continue_()

    await page.route(f"**{path}", record)
    return seen


async def post_form(page: Page, url: str, fields: dict[str, str]) -> None:
    """Submit ``fields`` as a real form from the current page (as a forged page would)."""
    await page.evaluate(
        """([url, fields]) => {
          const form = document.createElement("form");
          form.method = "post"; form.action = url;
          for (const [name, value] of Object.entries(fields)) {
            const input = document.createElement("input");
            input.type = "hidden"; input.name = name; input.value = value;
            form.appendChild(input);
          }
          document.body.appendChild(form);
          HTMLFormElement.prototype.submit.call(form);
        }""",
        [url, fields],
    )


async def csrf(page: Page) -> str:
    token: str = await page.locator("input[name=csrf_token]").first.input_value()
    return token
