"""The background half of a reset request: a link mailed to the account's own address when
there is one, the request recorded either way, and nothing mailed to a typed address.

That the request path does the same work for every address is tested on the page
(tests/web/auth/test_reset_enumeration.py); here send_reset_link is called directly, as the
background task the page schedules."""

from __future__ import annotations

from urllib.parse import urlsplit

from quart import Quart
from sqlalchemy import select

from push2fa.domain.reset_request import SUBJECT, send_reset_link
from push2fa.domain.reset_tokens import read_reset_token
from push2fa.models import AuditEvent, User
from push2fa.services import Services
from tests.web.auth.mailbox import LINK_RE, body_of, sent_mail

ORIGIN = ("203.0.113.5", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
RESET_PATH = "/auth/reset/"


async def add_user(svc: Services, name: str, email: str | None = None) -> User:
    async with svc.db.session() as db:
        person = User(username=name, email=email or f"{name}@example.com", password_hash="x")
        db.add(person)
        await db.commit()
        return person


async def request_reset(app: Quart, svc: Services, address: str) -> None:
    async with app.app_context():  # as the background task runs: in the app, no request
        await send_reset_link(svc, address, ORIGIN, RESET_PATH)


async def requests_recorded(svc: Services) -> list[AuditEvent]:
    async with svc.db.session() as db:
        rows = await db.execute(
            select(AuditEvent).where(AuditEvent.event == "password.reset_requested")
        )
        return list(rows.scalars())


def link_in(body: str) -> str:
    found = LINK_RE.search(body)
    assert found, body
    return found.group(0)


async def test_a_known_address_gets_a_link_that_resets_its_account(app, svc):
    alice = await add_user(svc, "alice")
    await request_reset(app, svc, "alice@example.com")
    [mail] = await sent_mail(app)
    assert mail["To"] == "alice@example.com" and mail["Subject"] == SUBJECT
    link = link_in(body_of(mail))
    assert link.startswith(svc.settings.public_url + RESET_PATH)
    token = link.removeprefix(svc.settings.public_url + RESET_PATH)
    async with svc.db.session() as db:
        found = await read_reset_token(db, svc.settings.secret_key, token)
    assert found is not None and found[0].id == alice.id


async def test_a_known_address_is_recorded_with_the_requests_origin(app, svc):
    alice = await add_user(svc, "alice")
    await request_reset(app, svc, "alice@example.com")
    [row] = await requests_recorded(svc)
    assert (row.user_id, row.ip, row.user_agent) == (alice.id, *ORIGIN)


async def test_an_unknown_address_gets_no_mail_but_is_recorded(app, svc):
    await add_user(svc, "alice")
    await request_reset(app, svc, "nobody@example.com")
    assert await sent_mail(app) == []
    [row] = await requests_recorded(svc)
    assert (row.user_id, row.ip, row.user_agent) == (None, *ORIGIN)


async def test_the_mail_goes_to_the_stored_address_not_the_typed_one(app, svc):
    """The lookup ignores case and surrounding spaces; the link is sent to the address the
    account has, never to the spelling someone typed."""
    await add_user(svc, "alice", "Alice@Example.com")
    await request_reset(app, svc, "  aLICE@example.COM ")
    [mail] = await sent_mail(app)
    assert mail["To"] == "Alice@Example.com"


async def test_an_address_that_only_resembles_one_gets_nothing(app, svc):
    await add_user(svc, "alice")
    for address in ("alice@example.co", "lice@example.com", "alice@example.com.evil", "alice%"):
        await request_reset(app, svc, address)
    assert await sent_mail(app) == []
    assert [row.user_id for row in await requests_recorded(svc)] == [None] * 4


async def test_a_request_for_one_account_mails_no_other(app, svc):
    await add_user(svc, "alice")
    await add_user(svc, "bob")
    await request_reset(app, svc, "bob@example.com")
    assert [str(m["To"]) for m in await sent_mail(app)] == ["bob@example.com"]


async def test_each_request_mails_a_different_link(app, svc):
    """Links are single use; two requests must not share one."""
    await add_user(svc, "alice")
    await request_reset(app, svc, "alice@example.com")
    await request_reset(app, svc, "alice@example.com")
    links = [link_in(body_of(m)) for m in await sent_mail(app)]
    assert len(links) == 2 and links[0] != links[1]


async def test_the_link_is_on_the_public_url_whatever_the_request_was(app, svc):
    """The task is handed no Host: the link is built from the configured public URL."""
    await add_user(svc, "alice")
    await request_reset(app, svc, "alice@example.com")
    [mail] = await sent_mail(app)
    assert urlsplit(link_in(body_of(mail))).netloc == urlsplit(svc.settings.public_url).netloc
