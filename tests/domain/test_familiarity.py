"""Familiarity on its own: the phone says "new" unless this very account has logged in
successfully from this exact browser, or from this network, before. The live check (what
the phone shows) is tests/web/twofa/test_live_familiarity.py."""

from __future__ import annotations

import pytest

from push2fa.domain import audit, familiarity
from push2fa.domain.familiarity import KNOWN, NEW
from push2fa.models import User
from push2fa.services import Services
from tests.domain.rows import add_user

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("192.0.2.77", "192.0.2.0/24"),
        (" 192.0.2.1 ", "192.0.2.0/24"),
        ("2001:db8:1:2:3::9", "2001:db8:1::/48"),
        ("2001:DB8:1:ffff::1", "2001:db8:1::/48"),
        ("::ffff:192.0.2.77", "192.0.2.0/24"),
    ],
)
def test_a_place_is_the_network_of_the_address(ip, network):
    assert familiarity.network_of(ip) == network


@pytest.mark.parametrize("ip", ["", "unknown", "192.0.2", "192.0.2.256", "10.0.0.1/8", "::g"])
def test_an_unknown_or_malformed_address_has_no_place(ip):
    assert familiarity.network_of(ip) is None


async def logged(svc: Services, user: User, event: str, ip: str, agent: str) -> None:
    async with svc.db.session() as db:
        audit.record(db, event, user.id, origin=(ip, agent))
        await db.commit()


async def describe(svc: Services, user: User, ip: str, agent: str) -> dict[str, str]:
    async with svc.db.session() as db:
        return await familiarity.describe(db, user.id, ip, agent)


async def test_a_first_login_is_new_browser_and_new_place(svc):
    dana = await add_user(svc, "dana")
    said = await describe(svc, dana, "192.0.2.10", CHROME)
    assert said == {"This browser": NEW, "This place": NEW}
    assert all(len(key) <= 20 for key in said)


async def test_a_login_from_the_same_browser_and_network_is_known(svc):
    dana = await add_user(svc, "dana")
    await logged(svc, dana, "login.succeeded", "192.0.2.10", CHROME)
    said = await describe(svc, dana, "192.0.2.200", CHROME)
    assert said == {"This browser": KNOWN, "This place": KNOWN}


async def test_another_browser_in_a_known_place_is_a_new_browser(svc):
    dana = await add_user(svc, "dana")
    await logged(svc, dana, "login.succeeded", "192.0.2.10", CHROME)
    said = await describe(svc, dana, "192.0.2.10", FIREFOX)
    assert said == {"This browser": NEW, "This place": KNOWN}


async def test_a_known_browser_from_another_network_is_a_new_place(svc):
    dana = await add_user(svc, "dana")
    await logged(svc, dana, "login.succeeded", "192.0.2.10", CHROME)
    said = await describe(svc, dana, "198.51.100.10", CHROME)
    assert said == {"This browser": KNOWN, "This place": NEW}


async def test_another_accounts_logins_make_nothing_known(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    await logged(svc, erin, "login.succeeded", "192.0.2.10", CHROME)
    said = await describe(svc, dana, "192.0.2.10", CHROME)
    assert said == {"This browser": NEW, "This place": NEW}


@pytest.mark.parametrize("event", ["login.failed", "push.created", "account.registered"])
async def test_only_successful_logins_make_a_browser_known(svc, event):
    """An attacker's failed attempts from their own browser must not make it look known."""
    dana = await add_user(svc, "dana")
    await logged(svc, dana, event, "192.0.2.10", CHROME)
    said = await describe(svc, dana, "192.0.2.10", CHROME)
    assert said == {"This browser": NEW, "This place": NEW}


async def test_an_unknown_address_is_never_a_known_place(svc):
    dana = await add_user(svc, "dana")
    await logged(svc, dana, "login.succeeded", "", CHROME)
    said = await describe(svc, dana, "", CHROME)
    assert said["This place"] == NEW


async def test_a_browser_is_the_exact_user_agent_not_a_prefix(svc):
    dana = await add_user(svc, "dana")
    await logged(svc, dana, "login.succeeded", "192.0.2.10", CHROME)
    for agent in (CHROME[:-1], CHROME + " extra", "", CHROME.lower()):
        assert (await describe(svc, dana, "192.0.2.10", agent))["This browser"] == NEW, agent


async def test_an_overlong_user_agent_is_compared_as_it_was_stored(svc):
    dana = await add_user(svc, "dana")
    agent = "A" * 600
    await logged(svc, dana, "login.succeeded", "192.0.2.10", agent[:512])
    assert (await describe(svc, dana, "192.0.2.10", agent))["This browser"] == KNOWN


async def test_ipv4_clients_of_a_dual_stack_socket_are_not_all_one_place(svc):
    """Hypercorn bound to [::] reports IPv4 clients as IPv4-mapped IPv6 addresses."""
    dana = await add_user(svc, "dana")
    await logged(svc, dana, "login.succeeded", "::ffff:192.0.2.10", CHROME)
    assert (await describe(svc, dana, "::ffff:198.51.100.7", CHROME))["This place"] == NEW
    assert (await describe(svc, dana, "::ffff:192.0.2.99", CHROME))["This place"] == KNOWN
    assert (await describe(svc, dana, "192.0.2.99", CHROME))["This place"] == KNOWN
