"""Mail to one address is limited per hour, whoever sets it off and whatever the kind.

The attack: knowing only an address, ask for 50 password resets (and register with the
address) to flood its inbox through the site. Rate limits per IP and per typed text are
off here, as they are for an attacker with many addresses and spellings.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from quart import Quart

from push2fa import mail_budget
from push2fa.domain import periodic
from push2fa.models import MailSent, utcnow
from push2fa.web.app import create_app
from tests.conftest import get_csrf, register
from tests.web.auth.mailbox import sent_mail

LIMIT = 4


@pytest.fixture
async def app(overrides: dict[str, Any]) -> Any:
    application = create_app(
        {**overrides, "rate_limits": False, "mail_per_address_per_hour": LIMIT}
    )
    async with application.test_app():
        yield application


async def ask_reset(client: Any, address: str) -> None:
    token = await get_csrf(client, "/auth/reset")
    response = await client.post("/auth/reset", form={"csrf_token": token, "email": address})
    assert response.status_code == 302


async def test_fifty_reset_requests_for_one_address_send_at_most_the_limit(app: Quart, client):
    await register(client, "alice", email="alice@example.com")

    for _ in range(50):
        await ask_reset(client, "alice@example.com")

    assert len(await sent_mail(app)) == LIMIT


async def test_fifty_parallel_reset_requests_send_at_most_the_limit(app: Quart, client):
    await register(client, "alice", email="alice@example.com")
    browsers = [app.test_client() for _ in range(50)]

    await asyncio.gather(*(ask_reset(b, "alice@example.com") for b in browsers))

    assert len(await sent_mail(app)) <= LIMIT


async def test_every_kind_of_mail_counts_toward_the_same_limit(app: Quart, client):
    await register(client, "alice", email="alice@example.com")
    for n in range(10):  # "someone tried to register with your address"
        await register(app.test_client(), f"mallory{n}", email="ALICE@example.com")
    for _ in range(10):
        await ask_reset(client, "alice@example.com")

    mails = await sent_mail(app)

    assert len(mails) == LIMIT
    assert {m["To"] for m in mails} == {"alice@example.com"}


async def test_other_addresses_have_their_own_limit(app: Quart, client):
    await register(client, "alice", email="alice@example.com")
    await register(client, "bob", email="bob@example.com")
    for _ in range(LIMIT + 3):
        await ask_reset(client, "alice@example.com")

    await ask_reset(client, "bob@example.com")

    assert [m["To"] for m in await sent_mail(app)].count("bob@example.com") == 1


async def test_the_limit_is_per_hour_and_old_sends_are_pruned(app: Quart):
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        key = mail_budget.address_key(svc.settings.secret_key, "alice@example.com")
        for _ in range(LIMIT):
            db.add(MailSent(address_key=key, sent_at=utcnow() - timedelta(minutes=61)))
        await db.commit()

        assert await mail_budget.claim(db, svc.settings.secret_key, "Alice@Example.com", LIMIT)

    await periodic.prune_mail_sends_once(svc)

    async with svc.db.session() as db:
        assert len((await db.execute(MailSent.__table__.select())).all()) == 1


async def test_addresses_are_not_stored(app: Quart, client):
    await register(client, "alice", email="alice@example.com")
    await ask_reset(client, "alice@example.com")
    await sent_mail(app)

    async with app.extensions["push2fa"].db.session() as db:
        rows = (await db.execute(MailSent.__table__.select())).all()
    assert rows and all("alice" not in str(tuple(row)) for row in rows)
