"""A wrong code keeps the "No phone at hand?" panel open, the error beside that code."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from push2fa.domain import challenges
from push2fa.models import LoginChallenge, utcnow

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


async def test_an_expired_request_leaves_one_action_and_no_number_or_resend(site, enrolled):
    browser, _ = enrolled
    await browser.login("alice")
    svc = site.app.extensions["push2fa"]
    async with svc.db.session() as db:
        await db.execute(
            update(LoginChallenge)
            .where(LoginChallenge.status == "pending")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()
        assert await challenges.expire_due(db, svc.realtime)

    await browser.get("/auth/2fa/wait")

    page = browser.last_html
    assert re.search(r'<h1 id="wait-title"[^>]*>\s*Request expired\s*</h1>', page)
    for gone in ("state-pending", "pending-actions", "complete-form"):
        assert re.search(rf'id="{gone}"[^>]*\shidden', page, re.S), f"#{gone} is still shown"
    assert 'id="no-phone"' not in page  # no code panel on a finished request
    expired = re.search(r'<div id="state-expired"\s*>(.*?)</form>', page, re.S)
    assert expired and expired.group(1).count("btn-primary") == 1
