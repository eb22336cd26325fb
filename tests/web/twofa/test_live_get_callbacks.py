"""The same flow when the Authy application is set to send GET callbacks."""

from __future__ import annotations

import pytest


@pytest.fixture
def site_options():
    return {"emulator_callback_method": "GET"}


async def test_get_callback_approves_the_login(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await browser.connect()
    request = await site.wait_for_request(authy_id)
    decided = await site.decide(request["uuid"], "approved", browser.match_code())
    assert decided["callback_status"] == 200
    await browser.wait_status("challenge", "approved")
