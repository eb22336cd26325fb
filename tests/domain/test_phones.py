"""Phones on an account, called directly against push2fa's own push service running as a
separate server on the test database: listed, removed (only the account's own, audited and
mailed), a test push, and what the owner is told. The pages around them are covered by
tests/web/account/test_live_phones.py."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from quart import Quart
from sqlalchemy import select

from push2fa.authy.client import AuthyClient
from push2fa.config import load_settings
from push2fa.domain import phones
from push2fa.models import AuditEvent, User
from push2fa.pushservice import EmulatorSettings, create_emulator_app
from push2fa.services import Services
from tests.conftest import TEST_SECRET
from tests.domain.rows import add_user
from tests.pushservice.conftest import API_KEY, APP_ID, APP_NAME, registration_token
from tests.servers import reserve_listener, serve_asgi, url_of
from tests.web.auth.mailbox import sent_mail

NOT_YOURS = "That phone is not one of yours, or it was removed already."


@pytest.fixture
async def push_service(database_url: str) -> AsyncIterator[str]:
    """push2fa's push service as its own server, sharing the app's database."""
    settings = EmulatorSettings(
        api_key=API_KEY,
        app_name=APP_NAME,
        app_id=APP_ID,
        callback_url="http://127.0.0.1:9/webhooks/authy",  # no callback is sent here
        database_url=database_url,
    )
    async with serve_asgi(create_emulator_app(settings)) as url:
        yield f"{url}/_emulator"


@pytest.fixture
def overrides(overrides: dict[str, Any], push_service: str) -> dict[str, Any]:
    return {
        **overrides,
        "push_service": "emulator",
        "emulator_url": push_service,
        "authy_api_key": API_KEY,
        "authy_app_name": APP_NAME,
        "authy_app_id": APP_ID,
    }


@pytest.fixture
async def unreachable() -> AsyncIterator[AuthyClient]:
    """A client of a push service that is not there (a port nothing listens on)."""
    listener = reserve_listener()
    url = url_of(listener)
    listener.close()
    async with aiohttp.ClientSession() as http:
        yield AuthyClient(f"{url}/_emulator", API_KEY, http, timeout=2.0)


async def enrol_phone(push_service: str, custom_user_id: str) -> int:
    """A phone enrolled at the push service as the QR code would; its user's authy id."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{push_service}/api/devices",
            json={"token": registration_token(custom_user_id)},
            headers={"X-Authy-API-Key": API_KEY},
        ) as response,
    ):
        assert response.status == 201, await response.text()
        authy_id: int = (await response.json())["authy_id"]
        return authy_id


async def user_with_phone(svc: Services, push_service: str, name: str) -> tuple[User, int]:
    """A user with push 2FA on and one phone; returns the user and the phone's id."""
    authy_id = await enrol_phone(push_service, name)
    async with svc.db.session() as db:
        user = User(
            username=name, email=f"{name}@example.com", password_hash="x", authy_id=authy_id
        )
        db.add(user)
        await db.commit()
    [phone] = await svc.push_client().list_devices(authy_id)
    return user, phone.id


async def phone_ids(svc: Services, user: User) -> list[int]:
    assert user.authy_id is not None
    return [phone.id for phone in await svc.push_client().list_devices(user.authy_id)]


async def removals(svc: Services) -> list[tuple[int | None, dict[str, Any]]]:
    async with svc.db.session() as db:
        rows = await db.execute(select(AuditEvent).where(AuditEvent.event == phones.REMOVED))
        return [(row.user_id, row.details) for row in rows.scalars()]


async def remove(app: Quart, svc: Services, user: User, device_id: int) -> str | None:
    async with app.app_context(), svc.db.session() as db:
        return await phones.remove(db, svc.push_client(), user, device_id)


def settings_for(push_service: str) -> Any:
    """The site's settings with its push service (and so the Approver) at `push_service`."""
    return load_settings(
        environ={},
        overrides={
            "secret_key": TEST_SECRET,
            "instance_path": "/nonexistent",
            "public_url": "https://site.example.com",
            "push_service": "emulator",
            "emulator_url": f"{push_service}/_emulator",
        },
    )


# --- when the Approver is possible ----------------------------------------------------------


@pytest.mark.parametrize(
    ("push_service", "possible"),
    [
        ("https://push.example.com", True),
        ("http://localhost:5001", True),
        ("http://push.example.com", False),  # WebAuthn needs https away from localhost
        ("http://127.0.0.1:5001", False),  # and a name, not an IP address
        ("https://192.0.2.10", False),
    ],
)
def test_the_approver_is_possible_only_where_webauthn_works(push_service: str, possible: bool):
    assert phones.approver_possible(settings_for(push_service)) is possible


# --- listing ---------------------------------------------------------------------------------


async def test_the_phones_of_an_account_are_listed(svc, push_service):
    alice, phone_id = await user_with_phone(svc, push_service, "alice")
    listing = await phones.listed(svc.settings, svc.push_client(), alice)
    assert listing is not None and listing.problem is None
    assert [phone.id for phone in listing.phones] == [phone_id]


async def test_nothing_is_listed_without_push_or_with_real_authy(svc, push_service):
    """Real Authy has no device list; an account without push has no phones to list."""
    nobody = await add_user(svc, "nobody")
    assert await phones.listed(svc.settings, svc.push_client(), nobody) is None
    alice, _ = await user_with_phone(svc, push_service, "alice")
    real_authy = dataclasses.replace(svc.settings, push_service="authy")
    assert await phones.listed(real_authy, svc.push_client(), alice) is None


async def test_a_push_service_that_does_not_answer_is_a_problem_not_an_error(
    svc, push_service, unreachable
):
    alice, _ = await user_with_phone(svc, push_service, "alice")
    listing = await phones.listed(svc.settings, unreachable, alice)
    assert listing is not None
    assert listing.phones == [] and listing.problem is not None
    assert "try again" in listing.problem


# --- removing --------------------------------------------------------------------------------


async def test_removing_a_phone_takes_it_away_at_once_audited_and_mailed(app, svc, push_service):
    alice, phone_id = await user_with_phone(svc, push_service, "alice")
    assert await remove(app, svc, alice, phone_id) is None
    assert await phone_ids(svc, alice) == []
    assert await removals(svc) == [(alice.id, {"device": phone_id})]
    [mail] = await sent_mail(app)
    assert mail["To"] == "alice@example.com"
    assert mail["Subject"] == "A phone was removed from your push2fa account"


async def test_removing_another_accounts_phone_is_refused_and_changes_nothing(
    app, svc, push_service
):
    """Mallory names Bob's phone id while logged in to her own account."""
    bob, bobs_phone = await user_with_phone(svc, push_service, "bob")
    mallory, mallorys_phone = await user_with_phone(svc, push_service, "mallory")
    assert await remove(app, svc, mallory, bobs_phone) == NOT_YOURS
    assert await phone_ids(svc, bob) == [bobs_phone]
    assert await phone_ids(svc, mallory) == [mallorys_phone]
    assert await removals(svc) == []
    assert await sent_mail(app) == []


async def test_removing_a_phone_twice_says_it_is_gone_and_records_it_once(app, svc, push_service):
    alice, phone_id = await user_with_phone(svc, push_service, "alice")
    assert await remove(app, svc, alice, phone_id) is None
    assert await remove(app, svc, alice, phone_id) == NOT_YOURS
    assert len(await removals(svc)) == 1


@pytest.mark.parametrize("device_id", [0, -1, 2**63])
async def test_a_phone_id_no_phone_can_have_is_refused_cleanly(app, svc, push_service, device_id):
    alice, phone_id = await user_with_phone(svc, push_service, "alice")
    problem = await remove(app, svc, alice, device_id)
    assert problem is not None
    assert await phone_ids(svc, alice) == [phone_id]
    assert await removals(svc) == []


async def test_removing_without_push_is_refused(app, svc, push_service):
    _, phone_id = await user_with_phone(svc, push_service, "alice")
    nobody = await add_user(svc, "nobody")
    assert await remove(app, svc, nobody, phone_id) == "Push two-factor login is off."
    assert await removals(svc) == []


async def test_a_removal_the_push_service_did_not_do_is_not_recorded(
    app, svc, push_service, unreachable
):
    alice, phone_id = await user_with_phone(svc, push_service, "alice")
    async with app.app_context(), svc.db.session() as db:
        problem = await phones.remove(db, unreachable, alice, phone_id)
    assert problem == "The phone could not be removed; try again in a moment."
    assert await phone_ids(svc, alice) == [phone_id]
    assert await removals(svc) == []
    assert await sent_mail(app) == []


# --- a test push ----------------------------------------------------------------------------


async def test_a_test_push_to_a_phone_without_notifications_says_so(svc, push_service):
    alice, phone_id = await user_with_phone(svc, push_service, "alice")
    category, message = await phones.test_push(svc.push_client(), alice, phone_id)
    assert category == "warning" and "no notifications turned on" in message


async def test_a_test_push_to_another_accounts_phone_is_refused(svc, push_service):
    _, bobs_phone = await user_with_phone(svc, push_service, "bob")
    mallory, _ = await user_with_phone(svc, push_service, "mallory")
    assert await phones.test_push(svc.push_client(), mallory, bobs_phone) == (
        "warning",
        "That phone is not one of yours, or it was removed.",
    )


async def test_a_test_push_without_push_or_without_the_service_is_refused(
    svc, push_service, unreachable
):
    alice, phone_id = await user_with_phone(svc, push_service, "alice")
    nobody = await add_user(svc, "nobody")
    assert await phones.test_push(svc.push_client(), nobody, phone_id) == (
        "warning",
        "Push two-factor login is off.",
    )
    category, _ = await phones.test_push(unreachable, alice, phone_id)
    assert category == "danger"


# --- telling the owner ----------------------------------------------------------------------


async def test_the_owner_is_told_of_an_added_phone(app, svc):
    alice = await add_user(svc, "alice")
    async with app.app_context(), svc.db.session() as db:
        await phones.tell_owner(db, alice.id, "added")
    [mail] = await sent_mail(app)
    assert mail["To"] == "alice@example.com"
    assert mail["Subject"] == "A new phone was added to your push2fa account"


async def test_telling_an_account_that_does_not_exist_sends_nothing(app, svc):
    async with app.app_context(), svc.db.session() as db:
        await phones.tell_owner(db, 12345, "added")
    assert await sent_mail(app) == []


async def test_outside_the_app_the_owner_cannot_be_told_and_nothing_fails(app, svc, caplog):
    """The push service's own process has no app, no mail settings: it logs instead."""
    alice = await add_user(svc, "alice")
    async with svc.db.session() as db:
        await phones.tell_owner(db, alice.id, "removed")
    assert "no mail sent" in caplog.text
    assert await sent_mail(app) == []
