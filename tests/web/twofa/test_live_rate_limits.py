"""Request rate limits on the password step, as a client sees them."""

from __future__ import annotations


async def test_password_guessing_is_rate_limited_per_account(site, enrolled):
    browser, _ = enrolled
    statuses = []
    for _ in range(12):
        resp = await browser.post_form(
            "/auth/login", {"login": "alice", "password": "nope nope"}, page="/auth/login"
        )
        statuses.append(resp.status)
    assert 429 in statuses
    limited = statuses.index(429)
    assert limited >= 9, statuses


async def test_rate_limited_response_says_when_to_retry(site, enrolled):
    browser, _ = enrolled
    for _ in range(12):
        resp = await browser.post_form(
            "/auth/login", {"login": "alice", "password": "nope nope"}, page="/auth/login"
        )
        if resp.status == 429:
            assert int(resp.headers["Retry-After"]) > 0
            assert "Too many requests" in browser.last_html
            return
    raise AssertionError("never rate limited")
