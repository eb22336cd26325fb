"""When no callback arrives, the server asks the push service itself (never the browser)."""

from __future__ import annotations

import pytest


@pytest.fixture
def site_options():
    # Callbacks go nowhere (a closed port), and the safety-net poll starts after 0.3 s.
    return {"emulator_callback_url": "http://127.0.0.1:9/webhooks/authy", "status_poll_delay": 0.3}


async def test_status_poll_finds_the_approval_when_the_callback_is_lost(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await browser.connect()
    request = await site.wait_for_request(authy_id)
    decided = await site.decide(request["uuid"], "approved", browser.match_code())
    assert decided["callback_status"] is None  # the webhook never arrived
    await browser.wait_status("challenge", "approved", timeout=10)
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/"
