"""Mail to the account's owner: a login from a browser the account has not seen (with a
working "this wasn't me" link), and every sensitive change, each saying where it came from.
Direct calls in a request context from a chosen address and browser; the mail is read from
the development outbox."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from quart import Quart

from push2fa.domain import audit, notices, reports
from push2fa.models import User
from push2fa.services import Services
from tests.conftest import TEST_SECRET
from tests.domain.rows import add_user
from tests.web.auth.mailbox import body_of, sent_mail

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
HOME, CAFE = "203.0.113.5", "198.51.100.7"
NEW_LOGIN = "New login to your push2fa account"


@asynccontextmanager
async def browsing(app: Quart, ip: str, agent: str) -> AsyncIterator[None]:
    """A request from `ip` with User-Agent `agent`, as the login page would see it."""
    headers = {"User-Agent": agent, "Remote-Addr": ip}  # where Quart reads the client from
    async with app.test_request_context("/auth/login", method="POST", headers=headers):
        yield


async def log_in(app: Quart, svc: Services, user: User, ip: str, agent: str) -> None:
    """What sessions.log_in does around the notice: the login's audit row, then the notice."""
    async with browsing(app, ip, agent), svc.db.session() as db:
        audit.record(db, "login.succeeded", user.id)
        await db.commit()
        await notices.new_login(db, svc.settings, user)


async def record_event(app: Quart, svc: Services, user: User, event: str, ip: str, agent: str):
    async with browsing(app, ip, agent), svc.db.session() as db:
        audit.record(db, event, user.id)
        await db.commit()


async def mails(app: Quart, subject: str | None = None) -> list[EmailMessage]:
    return [m for m in await sent_mail(app) if subject is None or m["Subject"] == subject]


def report_token_in(message: EmailMessage) -> str:
    found = re.search(r"https?://\S+/account/report/(\S+)", body_of(message))
    assert found, body_of(message)
    return found.group(1)


async def test_the_first_login_from_a_browser_is_mailed_with_where_it_came_from(app, svc):
    alice = await add_user(svc, "alice")
    await log_in(app, svc, alice, CAFE, CHROME)
    [mail] = await mails(app, NEW_LOGIN)
    assert mail["To"] == "alice@example.com"
    body = body_of(mail)
    assert "Chrome on Windows" in body and CAFE in body
    assert CHROME not in body  # a description, not the raw header


async def test_the_new_login_mail_carries_a_report_link_for_this_account(app, svc):
    alice = await add_user(svc, "alice")
    await log_in(app, svc, alice, CAFE, CHROME)
    [mail] = await mails(app, NEW_LOGIN)
    link = reports.read_token(TEST_SECRET, report_token_in(mail))
    assert link is not None and link.user_id == alice.id
    url = re.search(r"https?://\S+/account/report/\S+", body_of(mail))
    assert url and url.group(0).startswith(svc.settings.public_url + "/")


async def test_a_second_login_from_the_same_browser_and_address_is_not_mailed(app, svc):
    alice = await add_user(svc, "alice")
    await log_in(app, svc, alice, HOME, FIREFOX)
    await log_in(app, svc, alice, HOME, FIREFOX)
    assert len(await mails(app, NEW_LOGIN)) == 1


@pytest.mark.parametrize(("ip", "agent"), [(CAFE, FIREFOX), (HOME, CHROME)])
async def test_a_new_address_or_a_new_browser_is_mailed_again(app, svc, ip, agent):
    """Someone with the password on another network, or in another browser on the same one."""
    alice = await add_user(svc, "alice")
    await log_in(app, svc, alice, HOME, FIREFOX)
    await log_in(app, svc, alice, ip, agent)
    assert len(await mails(app, NEW_LOGIN)) == 2


async def test_the_browser_that_registered_the_account_is_not_new(app, svc):
    alice = await add_user(svc, "alice")
    await record_event(app, svc, alice, "account.registered", HOME, FIREFOX)
    await log_in(app, svc, alice, HOME, FIREFOX)
    assert await mails(app, NEW_LOGIN) == []


async def test_failed_attempts_from_a_browser_do_not_make_it_familiar(app, svc):
    """An attacker who failed a few times first is still a new browser when they succeed."""
    alice = await add_user(svc, "alice")
    for event in ("login.failed", "password.reset_requested", "challenge.denied"):
        await record_event(app, svc, alice, event, CAFE, CHROME)
    await log_in(app, svc, alice, CAFE, CHROME)
    assert len(await mails(app, NEW_LOGIN)) == 1


async def test_another_accounts_logins_from_a_browser_do_not_make_it_familiar(app, svc):
    """Mallory logs in to her own account first from her browser, then to Alice's."""
    alice, mallory = await add_user(svc, "alice"), await add_user(svc, "mallory")
    await log_in(app, svc, mallory, CAFE, CHROME)
    await log_in(app, svc, alice, CAFE, CHROME)
    to = sorted(str(m["To"]) for m in await mails(app, NEW_LOGIN))
    assert to == ["alice@example.com", "mallory@example.com"]


async def test_a_login_without_a_known_address_says_unknown(app, svc):
    alice = await add_user(svc, "alice")
    async with app.test_request_context("/auth/login"), svc.db.session() as db:
        audit.record(db, "login.succeeded", alice.id)
        await db.commit()
        await notices.new_login(db, svc.settings, alice)
    [mail] = await mails(app, NEW_LOGIN)
    assert "IP address: unknown" in body_of(mail)
    assert "Browser: Unknown browser" in body_of(mail)


async def test_a_sensitive_change_is_mailed_with_where_it_came_from(app, svc):
    alice = await add_user(svc, "alice")
    async with browsing(app, CAFE, FIREFOX):
        notices.sensitive_change(svc.settings, alice, "Your password was changed")
    [mail] = await mails(app)
    assert mail["Subject"] == "Your password was changed on your push2fa account"
    assert mail["To"] == "alice@example.com"
    body = body_of(mail)
    assert "Your password was changed." in body
    assert "Firefox on Linux" in body and CAFE in body
    link = reports.read_token(TEST_SECRET, report_token_in(mail))
    assert link is not None and link.user_id == alice.id


async def test_every_sensitive_change_is_mailed_even_from_a_familiar_browser(app, svc):
    alice = await add_user(svc, "alice")
    await log_in(app, svc, alice, HOME, FIREFOX)
    async with browsing(app, HOME, FIREFOX):
        notices.sensitive_change(svc.settings, alice, "New recovery codes were made")
        notices.sensitive_change(svc.settings, alice, "New recovery codes were made")
    assert len(await mails(app, "New recovery codes were made on your push2fa account")) == 2


async def test_each_mail_has_its_own_report_link(app, svc):
    """Report links are single use: two mails must not share one."""
    alice = await add_user(svc, "alice")
    async with browsing(app, HOME, FIREFOX):
        notices.sensitive_change(svc.settings, alice, "Your password was changed")
        notices.sensitive_change(svc.settings, alice, "Push two-factor login was turned off")
    links = [reports.read_token(TEST_SECRET, report_token_in(m)) for m in await mails(app)]
    assert all(link is not None for link in links)
    assert len({link.token_id for link in links if link is not None}) == 2


async def test_the_report_link_is_on_the_public_url_not_the_requests_host(app, svc):
    """A request arriving with a forged Host header must not move the link elsewhere."""
    alice = await add_user(svc, "alice")
    async with app.test_request_context("/", headers={"Host": "evil.example"}):
        link = notices.report_link(svc.settings, alice)
    assert urlsplit(link).netloc == urlsplit(svc.settings.public_url).netloc != "evil.example"
    assert "evil.example" not in link
