"""The phone says whether a login's browser and place are new for the account: the hint
that lets a person tell a stranger with their password from themselves."""

from __future__ import annotations

from push2fa.domain.familiarity import network_of

STRANGER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 stranger"


def test_a_place_is_the_network_not_the_exact_address():
    assert network_of("203.0.113.7") == network_of("203.0.113.200") == "203.0.113.0/24"
    assert network_of("203.0.114.7") != network_of("203.0.113.7")
    assert network_of("2001:db8:1:2::5") == "2001:db8:1::/48"
    assert network_of("not an address") is None
    assert network_of("") is None


async def test_the_phone_says_a_known_browser_is_known(site, enrolled):
    browser, authy_id = enrolled  # logged in once with the password, from this browser
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    assert request["details"]["This browser"] == "used before"
    assert request["details"]["This place"] == "used before"


async def test_a_stranger_with_the_password_shows_as_a_new_browser(site, enrolled, browsers):
    """Knowing only the username and password, from another browser: the phone says so."""
    _, authy_id = enrolled
    stranger = browsers(user_agent=STRANGER)
    await stranger.login("alice")
    request = await site.wait_for_request(authy_id)
    assert request["details"]["This browser"] == "new for your account"
    assert request["details"]["Browser"].startswith("Firefox")
