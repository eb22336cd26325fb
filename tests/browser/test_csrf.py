"""CSRF in a real browser: a page on another port of the same host (the same *site*, so
SameSite=Lax cookies are sent along) submits a form to push2fa in the user's browser. The
central CSRF check refuses it and nothing changes; the user's own form still works."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.browser.test_story import log_in, register
from tests.servers import serve_asgi

pytest.importorskip("playwright", reason="the playwright package is not installed")
from playwright.async_api import expect  # noqa: E402


def attacker_page(target: str) -> bytes:
    return (
        "<!doctype html><title>Win a prize</title>"
        f'<form method="post" action="{target}/profile/edit">'
        '<input name="about_me" value="pwned by a same-site page">'
        '<button type="submit">Claim</button></form>'
        f'<form method="post" action="{target}/auth/logout">'
        '<button type="submit">Claim again</button></form>'
    ).encode()


@pytest.fixture
async def attacker(site: str) -> AsyncIterator[str]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": attacker_page(site)})

    async with serve_asgi(app) as url:
        yield url


async def test_a_same_site_page_cannot_post_a_form_in_the_users_browser(
    open_page: Any, site: str, attacker: str
) -> None:
    user = await open_page("user")
    await register(user, site)
    await log_in(user, site)

    refused = user.get_by_text("This form expired or was not sent from this site")
    for button in ("Claim", "Claim again"):  # change the profile; log the user out
        await user.goto(attacker)
        await user.get_by_role("button", name=button, exact=True).click()
        await expect(refused).to_be_visible()

    await user.goto(site)
    await expect(user.get_by_role("button", name="Log out")).to_be_visible()
    await user.goto(f"{site}/profile/edit")
    about = user.get_by_label("About me")
    await expect(about).not_to_have_value("pwned by a same-site page")
    await about.fill("written by me")
    await user.get_by_role("button", name="Save").click()
    await expect(user.get_by_text("Your changes have been saved.")).to_be_visible()
