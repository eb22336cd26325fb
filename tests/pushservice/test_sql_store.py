"""The push service's store in the app's database: what it keeps reads back as it was
made, survives a new store on the same database (a restart, another worker or host), and
every race has exactly one winner — on SQLite, and on PostgreSQL with
PUSH2FA_TEST_DATABASE=postgres."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from push2fa.pushservice.errors import ClaimRejected, TokenAlreadyUsed
from push2fa.pushservice.sql_store import SqlStore
from push2fa.pushservice.store import ID_HIGH, ID_LOW, Decision, NewApprovalRequest, Store

NOW = datetime.now(UTC).replace(microsecond=0)
LATER = NOW + timedelta(minutes=5)
Opener = Callable[[], SqlStore]


@pytest.fixture
async def open_store(database_url: str) -> AsyncIterator[Opener]:
    """Opens stores on one migrated database: each call is another process."""
    opened: list[SqlStore] = []

    def open_one() -> SqlStore:
        opened.append(SqlStore(database_url))
        return opened[-1]

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
def store(open_store: Opener) -> SqlStore:
    return open_store()


def new_request(seconds_to_expire: int = 60, **details: str) -> NewApprovalRequest:
    logos = ({"res": "default", "url": "https://example.com/logo.png"},)
    return NewApprovalRequest("Log in?", details, {"challenge": "c1"}, logos, seconds_to_expire)


async def register(store: Store, custom_user_id: str = "u-1", token: str | None = None):
    return await store.register_device(
        custom_user_id,
        "127.0.0.1",
        NOW,
        token_hash=token or secrets.token_hex(32),
        token_expires_at=LATER,
    )


async def decide(
    store: Store, request_uuid: str, status: Decision, device_id: int, now: datetime = NOW
) -> bool:
    decided = await store.decide_request(
        request_uuid, status, device_id=device_id, reason="r", responder_ip="10.0.0.9", now=now
    )
    return decided is not None


async def test_a_request_reads_back_as_it_was_made_and_decided(store):
    user, device = await register(store)
    made = await store.create_request(user.authy_id, new_request(Username="ana"), NOW)

    assert await store.get_request(made.uuid) == made
    assert await store.pending_requests_for(user.authy_id, NOW) == [made]
    assert await decide(store, made.uuid, "approved", device.id, NOW + timedelta(seconds=1))
    decided = await store.get_request(made.uuid)

    assert decided is not None and decided.status == "approved"
    assert decided.device_id == device.id and decided.reason == "r"
    assert decided.processed_at == NOW + timedelta(seconds=1)
    assert await store.pending_requests_for(user.authy_id, NOW) == []


async def test_expired_answered_or_withdrawn_requests_cannot_be_decided(store):
    user, device = await register(store)
    expiring = await store.create_request(user.authy_id, new_request(10), NOW)
    answered = await store.create_request(user.authy_id, new_request(), NOW)
    withdrawn = await store.create_request(user.authy_id, new_request(), NOW)
    assert await decide(store, answered.uuid, "denied", device.id)
    assert (await store.withdraw_request(withdrawn.uuid, NOW)) is not None

    late = NOW + timedelta(seconds=10)
    assert not await decide(store, expiring.uuid, "approved", device.id, late)
    assert not await decide(store, answered.uuid, "approved", device.id)
    assert not await decide(store, withdrawn.uuid, "approved", device.id)
    assert await store.withdraw_request(answered.uuid, NOW) is None
    assert await store.pending_requests_for(user.authy_id, NOW + timedelta(seconds=10)) == []
    gone = await store.get_request(withdrawn.uuid)
    assert gone is not None and gone.status == "withdrawn" and gone.status_at(NOW) == "expired"


async def test_never_expiring_request_stays_pending(store):
    user, _ = await register(store)
    request = await store.create_request(user.authy_id, new_request(0), NOW)
    assert request.expires_at is None
    later = NOW + timedelta(days=3650)
    assert [r.uuid for r in await store.pending_requests_for(user.authy_id, later)] == [
        request.uuid
    ]


async def test_registration_totp_steps_and_deletion(store):
    user, device = await register(store)
    assert await store.registration_status("u-1") == user.authy_id
    assert await store.devices_for(user.authy_id) == [device]
    assert ID_LOW <= user.authy_id < ID_HIGH and ID_LOW <= device.id < ID_HIGH
    assert await store.accept_totp_step(device.id, 100)
    assert not await store.accept_totp_step(device.id, 100)
    assert not await store.accept_totp_step(device.id, 99)
    assert (await store.get_device(device.id)).last_totp_step == 100
    phone_user = await store.create_user("a@example.com", "5551234", 1, NOW)
    assert await store.create_user("b@example.com", "5551234", 1, NOW) == phone_user
    request = await store.create_request(user.authy_id, new_request(), NOW)

    assert await store.delete_user(user.authy_id)
    assert not await store.delete_user(user.authy_id)
    assert await store.get_user(user.authy_id) is None
    assert await store.registration_status("u-1") is None
    assert await store.get_device(device.id) is None
    assert await store.get_request(request.uuid) is None
    assert await store.get_user(phone_user.authy_id) == phone_user


async def test_a_second_token_adds_a_second_device_to_the_same_user(store):
    first_user, first = await register(store)
    second_user, second = await register(store)

    assert first_user == second_user and first.id != second.id
    devices = await store.devices_for(first_user.authy_id)
    assert sorted(devices, key=lambda d: d.id) == sorted([first, second], key=lambda d: d.id)


async def test_a_spent_token_is_refused_and_changes_nothing(store):
    user, device = await register(store, token="t" * 64)

    with pytest.raises(TokenAlreadyUsed):
        await register(store, token="t" * 64)
    assert await store.devices_for(user.authy_id) == [device]


async def test_pruning_forgets_old_answers_and_spent_tokens_only(store):
    user, device = await register(store, token="a" * 64)
    old = await store.create_request(user.authy_id, new_request(60), NOW - timedelta(days=8))
    fresh = await store.create_request(user.authy_id, new_request(60), NOW)

    await store.prune(LATER + timedelta(seconds=1))

    assert await store.get_request(old.uuid) is None
    assert await store.get_request(fresh.uuid) is not None
    # The spent token's row went with its expiry (the token itself is refused as expired
    # before the store is asked), so the table does not grow for ever.
    await register(store, token="a" * 64)


async def test_a_restarted_service_still_knows_devices_codes_and_pending_pushes(open_store):
    before = open_store()
    user, device = await register(before, "u-7")
    await before.accept_totp_step(device.id, 500)
    request = await before.create_request(user.authy_id, new_request(), NOW)
    await before.close()

    after = open_store()  # a new process on the same database

    assert await after.registration_status("u-7") == user.authy_id
    assert await after.get_device(device.id) == replace(device, last_totp_step=500)
    assert not await after.accept_totp_step(device.id, 500), "a used code stays used"
    assert await after.pending_requests_for(user.authy_id, NOW) == [request]


async def test_racing_decisions_from_two_processes_have_one_winner(open_store):
    first, second = open_store(), open_store()
    user, device = await register(first)
    request = await first.create_request(user.authy_id, new_request(), NOW)
    statuses: list[Decision] = ["approved", "denied"]

    results = await asyncio.gather(
        *(
            decide(store, request.uuid, status, device.id)
            for store in (first, second)
            for status in statuses * 5
        ),
        first.withdraw_request(request.uuid, NOW),
        second.withdraw_request(request.uuid, NOW),
    )

    decisions, withdrawals = results[:-2], results[-2:]
    assert decisions.count(True) + sum(w is not None for w in withdrawals) == 1


async def test_racing_totp_steps_from_two_processes_have_one_winner(open_store):
    first, second = open_store(), open_store()
    _, device = await register(first)

    results = await asyncio.gather(
        *(store.accept_totp_step(device.id, 77) for store in (first, second) * 5)
    )

    assert results.count(True) == 1


async def test_racing_registrations_with_one_token_have_one_winner(open_store):
    first, second = open_store(), open_store()

    async def attempt(store: SqlStore) -> object:
        try:
            return await register(store, "u-9", token="r" * 64)
        except TokenAlreadyUsed as exc:
            return exc

    results = await asyncio.gather(*(attempt(store) for store in (first, second) * 5))
    winners = [r for r in results if isinstance(r, tuple)]

    assert len(winners) == 1
    user = winners[0][0]
    assert len(await first.devices_for(user.authy_id)) == 1


async def test_racing_first_registrations_of_one_account_make_one_user(open_store):
    first, second = open_store(), open_store()

    results = await asyncio.gather(*(register(store, "u-2") for store in (first, second) * 5))

    assert len({user.authy_id for user, _ in results}) == 1
    assert len({device.id for _, device in results}) == 10


# --- e-mail codes: every step one conditional statement ------------------------------


async def test_users_are_found_by_their_email_ignoring_ascii_case_only(store):
    ann = await store.create_user("Ann@Example.COM", "5550123456", 1, NOW)
    await store.create_user("josé@example.com", "5550129999", 1, NOW)

    assert [u.authy_id for u in await store.users_with_email("ann@example.com")] == [ann.authy_id]
    assert await store.users_with_email("josÉ@example.com") == []


async def test_racing_tries_of_one_code_count_no_more_than_the_limit(open_store):
    first, second = open_store(), open_store()
    await first.issue_email_code("c-1", "ann@example.com", "h" * 64, NOW, LATER)

    results = await asyncio.gather(
        *(store.try_email_code("ann@example.com", NOW, 5) for store in (first, second) * 10)
    )

    assert sum(len(tried) for tried in results) == 5
    assert await first.try_email_code("ann@example.com", NOW, 5) == []


async def test_racing_claims_of_one_code_have_one_winner(open_store):
    first, second = open_store(), open_store()
    await first.issue_email_code("c-1", "ann@example.com", "h" * 64, NOW, LATER)

    results = await asyncio.gather(
        *(
            store.claim_email_code("c-1", f"{n:064x}", NOW)
            for n, store in enumerate((first, second) * 5)
        )
    )

    assert results.count(True) == 1
    [claim] = [f"{n:064x}" for n, won in enumerate(results) if won]
    assert await first.email_of_claim(claim, NOW) == "ann@example.com"
    assert await first.try_email_code("ann@example.com", NOW, 5) == []  # claimed: no more tries


async def test_racing_enrolments_with_one_claim_add_one_device(open_store):
    first, second = open_store(), open_store()
    ann = await first.create_user("ann@example.com", "5550123456", 1, NOW)
    await first.issue_email_code("c-1", "ann@example.com", "h" * 64, NOW, LATER)
    assert await first.claim_email_code("c-1", "c" * 64, NOW)

    async def attempt(store: SqlStore) -> object:
        try:
            return await store.register_device_by_claim("c" * 64, ann.authy_id, "::1", NOW)
        except ClaimRejected as exc:
            return exc

    results = await asyncio.gather(*(attempt(store) for store in (first, second) * 5))

    assert sum(not isinstance(r, ClaimRejected) for r in results) == 1
    assert len(await first.devices_for(ann.authy_id)) == 1
    assert await first.email_of_claim("c" * 64, NOW) is None


async def test_a_claim_adds_no_device_to_a_user_of_another_email_or_after_expiry(store):
    ann = await store.create_user("ann@example.com", "5550123456", 1, NOW)
    bob = await store.create_user("bob@example.com", "5550129999", 1, NOW)
    await store.issue_email_code("c-1", "ann@example.com", "h" * 64, NOW, LATER)
    assert await store.claim_email_code("c-1", "c" * 64, NOW)

    with pytest.raises(ClaimRejected):
        await store.register_device_by_claim("c" * 64, bob.authy_id, "::1", NOW)
    with pytest.raises(ClaimRejected):
        await store.register_device_by_claim("c" * 64, ann.authy_id, "::1", LATER)
    assert await store.devices_for(bob.authy_id) == []
    assert await store.devices_for(ann.authy_id) == []


async def test_a_new_code_ends_the_earlier_ones_and_pruning_forgets_expired_codes(store):
    await store.issue_email_code("c-1", "ann@example.com", "1" * 64, NOW, LATER)
    await store.issue_email_code("c-2", "ann@example.com", "2" * 64, NOW, LATER)

    assert await store.try_email_code("ann@example.com", NOW, 5) == [("c-2", "2" * 64)]
    await store.prune(LATER + timedelta(seconds=1))
    await store.issue_email_code("c-1", "ann@example.com", "3" * 64, NOW, LATER)  # id free
