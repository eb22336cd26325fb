"""Enrolling a phone, called directly: the registration token says who enrols, signed with
the API key and living as long as the enrolment; a new enrolment abandons the old one; an
enrolment ends once, whoever races for it, and only a completed one turns push on, for its
own account. The live flow is tests/web/twofa/test_live_enrolment.py."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import jwt
import pytest

from push2fa.domain import enrollment
from push2fa.models import Enrollment, User
from push2fa.services import Services
from tests.domain.rows import account, add_user, events


class Recorder:
    """Stands in for nothing: wraps the real Realtime and records what it published."""

    def __init__(self, realtime: Any) -> None:
        self.events: list[tuple[int, dict[str, Any]]] = []
        self._inner = realtime

    async def publish_challenge(self, public_id: str, data: Any) -> None:
        await self._inner.publish_challenge(public_id, data)

    async def publish_enrollment(self, user_id: int, data: Any) -> None:
        self.events.append((user_id, dict(data)))
        await self._inner.publish_enrollment(user_id, data)


pytestmark = pytest.mark.usefixtures("background_stopped")


@pytest.fixture
def published(svc) -> Recorder:
    return Recorder(svc.realtime)


async def start(svc: Services, user: User, minutes: int = 5) -> Enrollment:
    async with svc.db.session() as db:
        return await enrollment.start(db, user, timedelta(minutes=minutes))


async def finish(
    app, svc: Services, published: Recorder, started: Enrollment, status: str, authy_id=None
) -> bool:
    async with app.app_context(), svc.db.session() as db:
        return await enrollment.finish(db, published, started, status, authy_id)


async def stored(svc: Services, started: Enrollment) -> Enrollment:
    async with svc.db.session() as db:
        row = await db.get(Enrollment, started.id)
        assert row is not None
        return row


# --- the registration token and QR code -----------------------------------------------------


def test_the_enrolment_waits_as_long_as_the_push_services_token_lives(app):
    settings = dataclasses.replace(app.extensions["push2fa"].settings, enrolment_token_minutes=7)
    assert enrollment.ttl(settings) == timedelta(minutes=7)


async def test_the_registration_token_names_the_user_and_lives_as_long_as_the_enrolment(svc):
    dana = await add_user(svc, "dana")
    started = await start(svc, dana, minutes=5)
    token = enrollment.registration_token(svc.settings, dana.id, started)
    claims = jwt.decode(
        token,
        svc.settings.authy_api_key,
        algorithms=["HS256"],
        issuer=svc.settings.authy_app_name,
        options={"require": ["iss", "iat", "exp"]},
    )
    assert claims["context"] == {
        "custom_user_id": str(dana.id),
        "authy_app_id": svc.settings.authy_app_id,
    }
    assert claims["exp"] - claims["iat"] == 300
    assert claims["exp"] == int(started.expires_at.timestamp())
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


async def test_a_registration_token_does_not_verify_under_another_key(svc):
    dana = await add_user(svc, "dana")
    token = enrollment.registration_token(svc.settings, dana.id, await start(svc, dana))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-api-key-0123456789abcdef", algorithms=["HS256"])


def test_the_qr_code_carries_the_token_as_an_authy_link():
    assert enrollment.qr_payload("abc.def.ghi") == "authy://account?token=abc.def.ghi"
    svg = enrollment.qr_svg(enrollment.qr_payload("abc.def.ghi"))
    assert svg.lstrip().startswith("<?xml") or svg.lstrip().startswith("<svg")
    assert "<svg" in svg and "<script" not in svg


def test_the_approver_link_keeps_the_token_out_of_the_server_logs(app):
    settings = dataclasses.replace(
        app.extensions["push2fa"].settings,
        push_service="emulator",
        public_url="http://localhost:5000",
        emulator_url="",
    )
    url = enrollment.approver_url(settings, "TOKEN")
    assert url == "http://localhost:5000/_emulator/approver/#t=TOKEN"
    assert enrollment.approver_url(dataclasses.replace(settings, push_service="authy"), "T") is None


# --- starting and finishing -------------------------------------------------------------------


async def test_a_new_enrolment_abandons_only_the_same_accounts_pending_one(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    first, erins = await start(svc, dana), await start(svc, erin)
    second = await start(svc, dana)
    assert (await stored(svc, first)).status == "cancelled"
    assert (await stored(svc, second)).status == "pending"
    assert (await stored(svc, erins)).status == "pending"
    async with svc.db.session() as db:
        latest = await enrollment.latest(db, dana.id)
        assert latest is not None and latest.id == second.id
        assert await enrollment.latest(db, 424242) is None
    assert (await events(svc, dana)).count("twofa.enrollment_started") == 2


async def test_a_completed_enrolment_turns_push_on_for_its_own_account_only(app, svc, published):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    started = await start(svc, dana)
    await start(svc, erin)
    assert await finish(app, svc, published, started, "completed", authy_id=4711) is True
    row = await stored(svc, started)
    assert (row.status, row.authy_id, row.completed_at is not None) == ("completed", 4711, True)
    user = await account(svc, dana)
    assert user.authy_id == 4711 and user.push_enabled_at is not None
    assert (await account(svc, erin)).authy_id is None
    assert {"twofa.enabled", "phone.added"} <= set(await events(svc, dana))
    assert published.events == [(dana.id, enrollment.event_payload(row))]
    assert published.events[0][1]["status"] == "completed"


async def test_an_enrolment_ends_once(app, svc, published):
    dana = await add_user(svc, "dana")
    started = await start(svc, dana)
    assert await finish(app, svc, published, started, "completed", authy_id=4711) is True
    assert await finish(app, svc, published, started, "expired") is False
    assert await finish(app, svc, published, started, "completed", authy_id=666) is False
    assert (await stored(svc, started)).status == "completed"
    assert (await account(svc, dana)).authy_id == 4711
    assert len(published.events) == 1


async def test_an_expired_enrolment_turns_nothing_on(app, svc, published):
    dana = await add_user(svc, "dana")
    started = await start(svc, dana)
    assert await finish(app, svc, published, started, "expired") is True
    assert await finish(app, svc, published, started, "completed", authy_id=4711) is False
    assert (await account(svc, dana)).authy_id is None
    assert "twofa.enrollment_expired" in await events(svc, dana)
    assert [data["status"] for _, data in published.events] == ["expired"]


async def test_an_abandoned_enrolments_phone_is_not_added(app, svc, published):
    """The QR code of an enrolment replaced by a newer one no longer adds a phone."""
    dana = await add_user(svc, "dana")
    old = await start(svc, dana)
    await start(svc, dana)
    assert await finish(app, svc, published, old, "completed", authy_id=4711) is False
    assert (await account(svc, dana)).authy_id is None
    assert published.events == []


async def test_completion_and_expiry_racing_leave_one_consistent_outcome(app, svc, published):
    dana = await add_user(svc, "dana")
    started = await start(svc, dana)
    won = await asyncio.gather(
        finish(app, svc, published, started, "completed", authy_id=4711),
        finish(app, svc, published, started, "expired"),
        finish(app, svc, published, started, "completed", authy_id=4712),
    )
    assert sum(won) == 1
    status = (await stored(svc, started)).status
    authy_id = (await account(svc, dana)).authy_id
    if status == "expired":
        assert authy_id is None
    else:
        assert status == "completed" and authy_id in {4711, 4712}
        assert authy_id == (await stored(svc, started)).authy_id
    assert len(published.events) == 1


@pytest.mark.parametrize(
    ("status", "authy_id"),
    [
        ("completed", None),
        ("expired", 4711),
        ("pending", None),
        ("cancelled", None),
        ("approved", 4711),
        ("", None),
    ],
)
async def test_an_ending_that_is_not_one_is_refused_and_changes_nothing(
    app, svc, published, status, authy_id
):
    """A "completed" without a phone would tell the page and mail the owner that a phone
    was added while push stays off; any other word would be written as the status."""
    dana = await add_user(svc, "dana")
    started = await start(svc, dana)
    with pytest.raises(ValueError, match="not an end of an enrolment"):
        await finish(app, svc, published, started, status, authy_id=authy_id)
    assert (await stored(svc, started)).status == "pending"
    assert (await account(svc, dana)).authy_id is None
    assert published.events == []
    assert await finish(app, svc, published, started, "completed", authy_id=4711) is True
