"""What the phone's answer means, called directly: an approval counts only with the right
number (where the phone can pick one), a denial is a failed attempt, a denial reported as
"this wasn't me" ends what the attacker holds, and an answer that changes nothing counts
nothing, even when copies race. Each test runs twice: the answer given for a challenge
already read (the status poll) and for the challenge a callback names by request id and
device (the webhook, which decides in one UPDATE when it can). The live flow is
tests/web/twofa/test_live_abuse.py."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from push2fa.domain import challenges, push_answers
from push2fa.models import AuditEvent, ChallengeStatus, LoginChallenge, User, utcnow
from push2fa.services import Services
from tests.domain.rows import account, add_user, set_challenge, stored_challenge

S = ChallengeStatus


pytestmark = pytest.mark.usefixtures("background_stopped")


@pytest.fixture(params=["poll", "callback"], autouse=True)
def route(request: pytest.FixtureRequest) -> Iterator[None]:
    """Which entry point `answer` uses in this run of the test."""
    token = ROUTE.set(request.param)
    yield
    ROUTE.reset(token)


ROUTE: contextvars.ContextVar[str] = contextvars.ContextVar("route")


async def push(svc: Services, user: User, code: str | None = "42") -> LoginChallenge:
    async with svc.db.session() as db:
        context = challenges.Context("192.0.2.10", "UA")
        challenge = await challenges.create(db, user, context, 120, match_code=code)
        await challenges.attach_provider(db, challenge, f"uuid-{challenge.id}", 3)
        return challenge


async def answer(
    svc: Services,
    challenge: LoginChallenge,
    status: ChallengeStatus,
    reason: str | None,
    into: Services | None = None,
) -> LoginChallenge | None:
    services = into or svc
    async with svc.db.session() as db:
        if ROUTE.get() == "poll":
            return await push_answers.apply_answer(
                db, services, challenge, status, reason, by="test"
            )
        assert challenge.provider_uuid is not None and challenge.authy_id is not None
        return await push_answers.apply_callback(
            db, services, challenge.provider_uuid, challenge.authy_id, status, reason, by="test"
        )


async def failures(svc: Services, user: User) -> list[str]:
    async with svc.db.session() as db:
        rows = await db.execute(
            select(AuditEvent.details).where(
                AuditEvent.user_id == user.id, AuditEvent.event == "auth.failure"
            )
        )
        return [details["kind"] for details in rows.scalars()]


async def test_an_approval_with_the_right_number_approves(svc):
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    changed = await answer(svc, challenge, S.APPROVED, " 42 ")
    assert changed is not None and changed.status == S.APPROVED
    stored = await stored_challenge(svc, challenge)
    assert (stored.status, stored.decided_by) == (S.APPROVED, "test")
    assert (await account(svc, dana)).failed_attempts == 0


@pytest.mark.parametrize("picked", ["17", None, "", "4", "420", "reported"])
async def test_an_approval_with_a_wrong_or_no_number_is_a_denial_and_a_failure(svc, picked):
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    changed = await answer(svc, challenge, S.APPROVED, picked)
    assert changed is not None
    stored = await stored_challenge(svc, challenge)
    assert (stored.status, stored.reason) == (S.DENIED, push_answers.WRONG_NUMBER)
    assert stored.decided_by == "test"
    assert (await account(svc, dana)).failed_attempts == 1
    assert await failures(svc, dana) == ["wrong_number"]
    assert (await account(svc, dana)).push_blocked_until is None


async def test_without_a_number_to_match_an_approval_approves(svc):
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana, code=None)
    assert (await answer(svc, challenge, S.APPROVED, None)) is not None
    assert (await stored_challenge(svc, challenge)).status == S.APPROVED


async def test_with_real_authy_the_number_is_not_enforced(svc):
    """The Authy app cannot pick a number: there the code is only shown to compare."""
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    authy = dataclasses.replace(
        svc, settings=dataclasses.replace(svc.settings, push_service="authy")
    )
    assert (await answer(svc, challenge, S.APPROVED, None, into=authy)) is not None
    assert (await stored_challenge(svc, challenge)).status == S.APPROVED


async def test_a_denial_is_a_failed_attempt_and_keeps_no_made_up_reason(svc):
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    await answer(svc, challenge, S.DENIED, "<script>anything the phone says</script>")
    stored = await stored_challenge(svc, challenge)
    assert (stored.status, stored.reason, stored.decided_by) == (S.DENIED, None, "test")
    assert await failures(svc, dana) == ["push_denied"]
    user = await account(svc, dana)
    assert user.failed_attempts == 1 and not user.must_change_password


async def test_a_reported_denial_is_this_wasnt_me(svc):
    dana = await add_user(svc, "dana", 11)
    reported, other = await push(svc, dana), await push(svc, dana)
    await answer(svc, reported, S.DENIED, push_answers.REPORTED)
    assert (await stored_challenge(svc, reported)).reason == push_answers.REPORTED
    assert (await stored_challenge(svc, other)).status == S.CANCELLED
    user = await account(svc, dana)
    assert user.must_change_password and user.push_blocked_until is not None
    assert await failures(svc, dana) == []  # a report is not a failure that could lock
    async with svc.db.session() as db:
        reports = await db.execute(
            select(AuditEvent.details).where(AuditEvent.event == "push.reported")
        )
        assert [details["source"] for details in reports.scalars()] == ["test"]


async def test_a_report_ends_only_the_reporting_accounts_pushes(svc):
    dana, erin = await add_user(svc, "dana", 11), await add_user(svc, "erin", 12)
    danas, erins = await push(svc, dana), await push(svc, erin)
    await answer(svc, danas, S.DENIED, push_answers.REPORTED)
    assert (await stored_challenge(svc, erins)).status == S.PENDING
    bystander = await account(svc, erin)
    assert not bystander.must_change_password and bystander.push_blocked_until is None


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ((S.DENIED, None), (S.DENIED, None)),
        ((S.DENIED, None), (S.DENIED, push_answers.REPORTED)),
        ((S.APPROVED, "42"), (S.DENIED, push_answers.REPORTED)),
        ((S.APPROVED, "42"), (S.APPROVED, "17")),
        ((S.DENIED, None), (S.APPROVED, "42")),
    ],
)
async def test_an_answer_to_a_decided_push_changes_and_counts_nothing(svc, first, again):
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    await answer(svc, challenge, *first)
    before = await stored_challenge(svc, challenge)
    counted = (await account(svc, dana)).failed_attempts
    assert await answer(svc, challenge, *again) is None
    after = await stored_challenge(svc, challenge)
    assert (after.status, after.reason) == (before.status, before.reason)
    user = await account(svc, dana)
    assert user.failed_attempts == counted
    assert not user.must_change_password and user.push_blocked_until is None


async def test_racing_copies_of_a_denial_count_one_failure(svc):
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    results = await asyncio.gather(*(answer(svc, challenge, S.DENIED, None) for _ in range(4)))
    assert sum(result is not None for result in results) == 1
    assert (await account(svc, dana)).failed_attempts == 1
    assert await failures(svc, dana) == ["push_denied"]


async def test_racing_wrong_numbers_count_one_failure(svc):
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    results = await asyncio.gather(*(answer(svc, challenge, S.APPROVED, "17") for _ in range(4)))
    assert sum(result is not None for result in results) == 1
    assert (await account(svc, dana)).failed_attempts == 1


@pytest.mark.parametrize("status", [S.EXPIRED, S.CANCELLED, S.CONSUMED, S.PENDING])
async def test_an_answer_that_is_not_a_decision_is_refused_and_changes_nothing(svc, status):
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    with pytest.raises(ValueError, match="not a decision"):
        await answer(svc, challenge, status, push_answers.REPORTED)
    assert (await stored_challenge(svc, challenge)).status == S.PENDING
    user = await account(svc, dana)
    assert user.failed_attempts == 0 and not user.must_change_password


async def test_an_approval_for_another_device_or_request_decides_nothing(svc):
    """A callback names its challenge by request id AND device: the right request with
    another account's device (or the reverse) is no such request, and nothing changes."""
    dana, erin = await add_user(svc, "dana", 11), await add_user(svc, "erin", 12)
    danas, erins = await push(svc, dana), await push(svc, erin)
    assert danas.provider_uuid is not None and erins.provider_uuid is not None
    for uuid, device in ((danas.provider_uuid, 12), (erins.provider_uuid, 11), ("uuid-x", 11)):
        async with svc.db.session() as db:
            with pytest.raises(push_answers.UnknownRequest):
                await push_answers.apply_callback(
                    db, svc, uuid, device, S.APPROVED, "42", by="test"
                )
    assert (await stored_challenge(svc, danas)).status == S.PENDING
    assert (await stored_challenge(svc, erins)).status == S.PENDING


async def test_a_late_approval_expires_the_challenge(svc):
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    await set_challenge(svc, challenge, expires_at=utcnow() - timedelta(seconds=1))
    changed = await answer(svc, challenge, S.APPROVED, "42")
    assert changed is not None and changed.status == S.EXPIRED
    assert (await stored_challenge(svc, challenge)).status == S.EXPIRED
    assert (await account(svc, dana)).failed_attempts == 0


@pytest.mark.parametrize(
    ("status", "reason", "service"),
    [(S.APPROVED, "42", "own"), (S.APPROVED, None, "authy"), (S.DENIED, None, "own")],
)
async def test_a_callback_for_a_live_challenge_decides_it_without_reading_it_first(
    svc, status, reason, service
):
    """The webhook's common case is one UPDATE naming the challenge by request id and
    device (the number checked in it, where the phone can pick one), then the audit rows:
    no SELECT of the challenge."""
    dana = await add_user(svc, "dana", 11)
    challenge = await push(svc, dana)
    if service == "authy":
        svc = dataclasses.replace(
            svc, settings=dataclasses.replace(svc.settings, push_service="authy")
        )
    seen: list[str] = []

    def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split(None, 1)[0].upper())

    engine = svc.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        changed = await answer(svc, challenge, status, reason)
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert changed is not None and changed.status == status
    if ROUTE.get() == "callback" and status == S.APPROVED:
        assert seen == ["UPDATE", "INSERT"]
    elif ROUTE.get() == "callback":
        assert seen[0] == "UPDATE" and "SELECT" not in seen[:2]


@pytest.mark.parametrize(("status", "reason"), [(S.DENIED, None), (S.APPROVED, "17")])
async def test_the_denial_that_locks_the_second_factor_ends_the_accounts_other_pushes(
    svc, status, reason
):
    dana = await add_user(svc, "dana", 11)
    answered, other = await push(svc, dana), await push(svc, dana)
    strict = dataclasses.replace(
        svc, settings=dataclasses.replace(svc.settings, max_failed_attempts=1)
    )
    await answer(svc, answered, status, reason, into=strict)
    assert (await account(svc, dana)).second_factor_locked_at is not None
    ended = await stored_challenge(svc, other)
    assert (ended.status, ended.reason) == (S.CANCELLED, "locked")
