"""The client address and the per-account key, attacked over real HTTP: rotated and
malformed X-Forwarded-For headers, and one account typed many ways."""

from __future__ import annotations

import ipaddress
import itertools

import pytest
from sqlalchemy import select

from push2fa.models import AuditEvent
from tests.conftest import csrf_from


@pytest.fixture(params=[0, 1], ids=["no-proxy", "one-proxy"])
def site_options(request):
    return {"trusted_proxies": request.param}


def _forwarded(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"203.0.{n // 250}.{n % 250 + 1}"}


async def test_rotating_forwarded_for_does_not_escape_the_per_ip_limit(site, browsers):
    if site.app.extensions["push2fa"].settings.trusted_proxies:
        pytest.skip("behind a trusted proxy the header is the address: rotating it is moving")
    browser = browsers()
    await browser.get("/auth/register")
    token = csrf_from(browser.last_html)
    statuses = []
    for n in range(15):  # the register form allows 10 submissions a minute per address
        resp = await browser.http.post(
            site.url + "/auth/register", data={"csrf_token": token}, headers=_forwarded(n)
        )
        statuses.append(resp.status)
    assert 429 in statuses and statuses.index(429) <= 10, statuses


MALFORMED = [
    "garbage",
    "",
    ",,,,",
    "not-an-ip, also not",
    "999.999.999.999",
    "[::1",
    "::::::::::::::::::::1",
    "fe80::1%eth0",
    "[zz::]:99",
    "1.2.3.4:99999:1",
    "\u00e9t\u00e9",
    ", ".join(f"10.0.{i // 250}.{i % 250}" for i in range(10_000)),
    "x" * 8000,
]


@pytest.mark.parametrize("value", MALFORMED, ids=lambda v: v[:20] or "empty")
async def test_malformed_forwarded_for_never_gives_a_server_error(site, enrolled, value):
    browser, _ = enrolled
    await browser.get("/auth/login")
    token = csrf_from(browser.last_html)
    headers = {
        "X-Forwarded-For": value.encode("utf-8").decode("latin-1"),
        "X-Forwarded-Proto": value[:50].encode("utf-8").decode("latin-1"),
    }
    page = await browser.http.get(site.url + "/auth/login", headers=headers)
    assert page.status < 500
    resp = await browser.http.post(
        site.url + "/auth/login",
        data={"csrf_token": token, "login": "alice", "password": "wrong password"},
        headers=headers,
    )
    assert resp.status < 500
    if resp.status == 400 and "Invalid username or password" in await resp.text():
        async with site.app.extensions["push2fa"].db.session() as db:
            ips = (
                (
                    await db.execute(
                        select(AuditEvent.ip).where(AuditEvent.event == "login.password_failed")
                    )
                )
                .scalars()
                .all()
            )
        assert ips and all(ipaddress.ip_address(ip) for ip in ips), ips  # an address, always
        if not site.app.extensions["push2fa"].settings.trusted_proxies:
            assert set(ips) == {"127.0.0.1"}  # never the client's own words


async def test_behind_a_proxy_the_address_is_the_hop_it_saw(site, enrolled):
    if not site.app.extensions["push2fa"].settings.trusted_proxies:
        pytest.skip("only behind a trusted proxy")
    browser, _ = enrolled
    await browser.get("/auth/login")
    token = csrf_from(browser.last_html)
    # The client wrote the first entry; the trusted proxy appended the address it saw.
    await browser.http.post(
        site.url + "/auth/login",
        data={"csrf_token": token, "login": "alice", "password": "wrong password"},
        headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.7"},
    )
    async with site.app.extensions["push2fa"].db.session() as db:
        ip = (
            await db.execute(
                select(AuditEvent.ip).where(AuditEvent.event == "login.password_failed")
            )
        ).scalar_one()
    assert ip == "198.51.100.7"


async def test_one_account_typed_many_ways_shares_one_limit(site, enrolled, browsers):
    """Username, e-mail, upper case, spaces: one account, one key. Each try comes from a
    new address (behind the proxy) or the same one (direct), so only the account limits."""
    spellings = itertools.cycle(
        ["alice", "alice@example.com", "ALICE", "  Alice ", "ALICE@EXAMPLE.COM"]
    )
    browser = browsers()
    statuses = []
    for n in range(14):  # ten a minute per account
        await browser.get("/auth/login")
        resp = await browser.http.post(
            site.url + "/auth/login",
            data={
                "csrf_token": csrf_from(browser.last_html),
                "login": next(spellings),
                "password": "wrong password",
            },
            headers=_forwarded(n),
        )
        statuses.append(resp.status)
    assert 429 in statuses and statuses.index(429) <= 10, statuses


async def test_unknown_names_are_limited_like_accounts(site, browsers):
    browser = browsers()
    statuses = []
    for n in range(14):
        await browser.get("/auth/login")
        resp = await browser.http.post(
            site.url + "/auth/login",
            data={
                "csrf_token": csrf_from(browser.last_html),
                "login": "nobody",
                "password": "wrong password",
            },
            headers=_forwarded(n),
        )
        statuses.append(resp.status)
    assert 429 in statuses and statuses.index(429) <= 10, statuses
