"""Enrolling a phone, end to end against a live site: where the page sends the phone,
how long its code lives, and that the account's owner hears of every phone added."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta

import pytest

from push2fa.config import load_settings
from push2fa.domain import enrollment as enrol
from push2fa.models import AuditEvent, Enrollment
from tests.conftest import get_csrf, login, register
from tests.web.auth.mailbox import outbox_messages


def settings_for(public_url: str, **extra: object):
    return load_settings(
        {},
        {
            "testing": True,
            "secret_key": "x" * 40,
            "database_url": "sqlite+aiosqlite://",
            "public_url": public_url,
            "push_service": "emulator",
            **extra,
        },
    )


def test_the_approver_link_carries_the_token_in_the_fragment_on_localhost():
    url = enrol.approver_url(settings_for("http://localhost:5000"), "TOKEN")
    assert url == "http://localhost:5000/_emulator/approver/#t=TOKEN"


def test_no_approver_link_where_webauthn_cannot_work():
    assert enrol.approver_url(settings_for("http://127.0.0.1:5000"), "TOKEN") is None


def test_the_enrolment_lives_as_long_as_the_push_service_token():
    assert enrol.ttl(settings_for("http://localhost:5000")) == timedelta(minutes=5)
    settings = settings_for("http://localhost:5000", enrolment_token_minutes=12)
    assert enrol.ttl(settings) == timedelta(minutes=12)


async def test_enrolment_page_on_localhost_sends_the_phone_to_the_approver(overrides, tmp_path):
    from push2fa.web.app import create_app

    app = create_app({**overrides, "public_url": "http://localhost:5000"})
    async with app.test_app():
        client = app.test_client()
        await register(client)
        await login(client)
        token = await get_csrf(client, "/auth/2fa/enable")
        response = await client.post("/auth/2fa/enable", form={"csrf_token": token})
        assert response.status_code == 303
        html = await (await client.get("/auth/2fa/enroll")).get_data(as_text=True)
    link = re.search(r'id="approver-link"', html) and re.search(
        r'href="(http://localhost:5000/_emulator/approver/#t=[A-Za-z0-9_\-.]+)"', html
    )
    assert link, html
    assert "The link works once, for 5 minutes" in html
    assert 'id="approver-off"' not in html
    assert "?token=" not in link.group(1)  # the token never goes into a query string


@pytest.fixture
def site_options():
    return {"enrolment_token_minutes": 9}


async def test_enrolment_page_on_an_ip_address_says_the_approver_is_off(site, browsers):
    browser = browsers()
    await browser.register("alice")
    await browser.login("alice")
    await browser.post_form("/auth/2fa/enable", {}, page="/auth/2fa/enable")
    html = browser.last_html
    assert 'id="approver-off"' in html and "IP address" in html
    assert "/approver/" not in html
    assert "The link works once" not in html
    assert re.search(r'id="phone-link"[^>]*>development\s+phone', html) or (
        "development\n     phone" in html
    )
    async with site.app.extensions["push2fa"].db.session() as db:
        from sqlalchemy import select

        enrollment = (await db.execute(select(Enrollment))).scalar_one()
    lifetime = enrollment.expires_at - enrollment.created_at
    assert lifetime == timedelta(minutes=9)  # PUSH2FA_ENROLMENT_TOKEN_MINUTES, not 5


async def test_a_new_phone_is_in_the_history_and_mailed_to_the_owner(site, browsers):
    browser = browsers()
    await browser.register("alice")
    await browser.login("alice")
    await browser.enable_push()
    async with site.app.extensions["push2fa"].db.session() as db:
        from sqlalchemy import select

        events = (await db.execute(select(AuditEvent.event))).scalars().all()
    assert "phone.added" in events
    await browser.get("/account/security")
    assert "New phone added" in browser.last_html
    instance = site.app.extensions["push2fa"].settings.instance_path
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        subjects = [m["Subject"] for m in outbox_messages(instance)]
        if any("new phone" in s.lower() for s in subjects):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"no 'new phone' mail; outbox has {subjects}")
    [mail] = [m for m in outbox_messages(instance) if "new phone" in m["Subject"].lower()]
    assert mail["To"] == "alice@example.com"
