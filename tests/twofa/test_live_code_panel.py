"""A wrong code keeps the "No phone at hand?" panel open, the error beside that code."""

from __future__ import annotations

import re

import pytest

PANEL_OPEN = re.compile(r'<details[^>]*id="no-phone"[^>]*\sopen[\s>]')


@pytest.mark.parametrize(
    ("path", "field", "wrong"),
    [
        ("/auth/2fa/recovery", "recovery-code", "aaaa-bbbb-cccc"),
        ("/auth/2fa/totp", "totp-code", "000000"),
    ],
)
async def test_a_wrong_code_keeps_the_panel_open_with_the_error_beside_the_code(
    site, enrolled, path: str, field: str, wrong: str
):
    browser, _ = enrolled
    await browser.login("alice")

    resp = await browser.post_form(path, {"code": wrong}, page="/auth/2fa/wait")

    page = browser.last_html
    assert resp.url.path == "/auth/2fa/wait"
    assert PANEL_OPEN.search(page), "the code panel was closed after a wrong code"
    error = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', page)
    assert error and "not right" in error.group(1)
    assert re.search(rf'id="{field}"[^>]*aria-describedby="{field}-error"', page, re.S)
    flashes = re.search(r'class="flash-messages".*?</div>\s*</div>', page, re.S)
    assert not flashes or "not right" not in flashes.group(0)  # not shown far away

    await browser.get("/auth/2fa/wait")  # said once: a reload starts clean
    assert not PANEL_OPEN.search(browser.last_html)
    assert "not right" not in browser.last_html
