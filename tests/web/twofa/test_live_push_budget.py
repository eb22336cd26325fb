"""The push budget attacked: parallel logins with the right password, waiting it out, and
the ways back in (a code, or the e-mail link). Pushes are counted where they land: at the
push service."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from push2fa.db import make_engine
from push2fa.domain import push_budget
from push2fa.models import AuditEvent, LoginChallenge, User
from tests.web.twofa.conftest import PASSWORD

PARALLEL = 24


@pytest.fixture
def site_options():
    # Many logins at once on purpose: the request limits are attacked in their own module.
    return {"rate_limits": False}


async def _login_many(site, browsers, count: int) -> list[str]:
    """`count` browsers submit the right password at the same moment."""
    attackers = [browsers() for _ in range(count)]
    await asyncio.gather(*(b.get("/auth/login") for b in attackers))
    pages = await asyncio.gather(
        *(b.post_form("/auth/login", {"login": "alice", "password": PASSWORD}) for b in attackers)
    )
    return [resp.url.path for resp in pages]


async def test_parallel_logins_never_put_more_pushes_on_the_phone_than_the_budget(
    site, enrolled, browsers
):
    _, authy_id = enrolled
    budget = site.app.extensions["push2fa"].settings.push_budget

    paths = await _login_many(site, browsers, PARALLEL)

    assert await site.pushes_sent(authy_id) == budget
    assert set(paths) == {"/auth/2fa/wait"}  # everyone reaches a page; only `budget` pushed


async def test_the_budget_holds_across_processes(site, enrolled, database_url):
    """Separate engines, as separate workers have, take pushes from one account at once."""
    settings = site.app.extensions["push2fa"].settings
    engines = [make_engine(database_url) for _ in range(4)]
    try:
        from sqlalchemy.ext.asyncio import async_sessionmaker

        makers = [async_sessionmaker(e, expire_on_commit=False) for e in engines]

        async def take(index: int) -> bool:
            async with makers[index % len(makers)]() as db:
                return (await push_budget.reserve(db, settings, 1)).allowed

        taken = await asyncio.gather(*(take(i) for i in range(PARALLEL)))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(taken) == settings.push_budget


async def _spend_budget(site, browser) -> None:
    budget = site.app.extensions["push2fa"].settings.push_budget
    for _ in range(budget):
        await browser.login("alice")
        await browser.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")


async def _age_everything(site, seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    async with site.app.extensions["push2fa"].db.session() as db:
        for challenge in (await db.execute(select(LoginChallenge))).scalars():
            challenge.created_at -= delta
        for event in (await db.execute(select(AuditEvent))).scalars():
            event.created_at -= delta
        await db.commit()


async def test_a_spent_budget_stays_spent_until_a_code_login(site, enrolled):
    browser, authy_id = enrolled
    await _spend_budget(site, browser)
    await _age_everything(site, 30 * 24 * 3600)  # a month: past any window there ever was

    await browser.login("alice")
    assert "Too many requests went to your phone" in browser.last_html
    assert await site.pushes_sent(authy_id) == 5

    _, body = await site.control("GET", f"/devices/{authy_id}/totp")
    resp = await browser.post_form("/auth/2fa/totp", {"code": body["code"]}, page="/auth/2fa/wait")
    assert resp.url.path == "/"
    await browser.logout()
    resp = await browser.login("alice")
    assert resp.url.path == "/auth/2fa/wait" and 'id="push-refused"' not in browser.last_html
    assert await site.pushes_sent(authy_id) == 6  # pushes flow again


def _mails(site) -> list[str]:
    outbox = Path(site.app.extensions["push2fa"].settings.instance_path) / "outbox"
    texts = []
    for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        texts.append(message.get_content())
    return texts


async def test_the_email_link_allows_pushes_again_once(site, enrolled, browsers):
    browser, authy_id = enrolled
    await _spend_budget(site, browser)
    await browser.login("alice")
    await browser.post_form("/auth/2fa/allow-pushes", {}, page="/auth/2fa/wait")
    assert "sent a link" in browser.last_html
    link = ""
    for _ in range(100):
        found = [m for m in _mails(site) if "/auth/2fa/allow-pushes/" in m]
        if found:
            match = re.search(r"(http://\S+/auth/2fa/allow-pushes/\S+)", found[-1])
            assert match is not None, found[-1]
            link = match.group(1)
            break
        await asyncio.sleep(0.05)
    assert link, "no link was mailed"

    mailbox = browsers()  # the user opens the mail elsewhere; a GET alone changes nothing
    resp = await mailbox.get(link.replace(site.url, ""))
    assert 'id="allow-pushes-form"' in mailbox.last_html
    async with site.app.extensions["push2fa"].db.session() as db:
        assert (await db.get(User, 1)).pushes_since_login == 5
    resp = await mailbox.post_form(link.replace(site.url, ""), {})
    assert resp.url.path == "/auth/login" and "allowed again" in mailbox.last_html

    replay = browsers()
    resp = await replay.get(link.replace(site.url, ""))
    assert resp.url.path == "/auth/login" and "invalid, used or expired" in replay.last_html

    await browser.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")
    resp = await browser.login("alice")
    assert 'id="push-refused"' not in browser.last_html
    assert await site.pushes_sent(authy_id) == 6


async def test_a_forged_email_link_allows_nothing(site, enrolled, browsers):
    browser, _ = enrolled
    await _spend_budget(site, browser)
    stranger = browsers()
    for token in ("x", "a" * 300, "eyJ1IjoxLCJqIjoiYWJjIn0.AAAA.BBBB"):
        resp = await stranger.get(f"/auth/2fa/allow-pushes/{token}")
        assert resp.status < 500 and resp.url.path == "/auth/login"
    async with site.app.extensions["push2fa"].db.session() as db:
        assert (await db.get(User, 1)).pushes_since_login == 5


async def test_cancel_costs_nothing_and_a_refused_resend_keeps_the_live_request(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await browser.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")
    resp = await browser.login("alice")  # a single cancel never blocks the next push
    assert resp.url.path == "/auth/2fa/wait" and 'id="push-refused"' not in browser.last_html
    async with site.app.extensions["push2fa"].db.session() as db:
        await db.execute(update(User).values(pushes_since_login=5))  # budget spent since
        await db.commit()
        await _age_everything(site, 11)  # past the resend interval
    await browser.post_form("/auth/2fa/resend", {}, page="/auth/2fa/wait")
    assert "Too many requests went to your phone" in browser.last_html
    async with site.app.extensions["push2fa"].db.session() as db:
        live = await db.execute(select(LoginChallenge).order_by(LoginChallenge.id.desc()))
        assert live.scalars().first().status == "pending"  # the live request was not killed
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/"
