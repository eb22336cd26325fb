"""The store's conditional updates: exactly one winner when answers race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from push2fa.pushservice.store import Decision, MemoryStore, NewApprovalRequest

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def new_request(seconds_to_expire: int = 60) -> NewApprovalRequest:
    return NewApprovalRequest("Log in?", {}, {}, None, seconds_to_expire)


async def test_only_one_of_racing_decisions_wins() -> None:
    store = MemoryStore()
    user, device = await store.register_device("u", "127.0.0.1", NOW)
    request = await store.create_request(user.authy_id, new_request(), NOW)

    async def decide(status: Decision) -> bool:
        return await store.decide_request(
            request.uuid, status, device_id=device.id, reason=None, responder_ip=None, now=NOW
        )

    statuses: list[Decision] = ["approved", "denied"]
    results = await asyncio.gather(*(decide(s) for s in statuses * 10))
    assert results.count(True) == 1
    assert (await store.pending_requests_for(user.authy_id, NOW)) == []


async def test_expired_request_cannot_be_decided_and_status_is_lazy() -> None:
    store = MemoryStore()
    user, device = await store.register_device("u", "127.0.0.1", NOW)
    request = await store.create_request(user.authy_id, new_request(10), NOW)
    later = NOW + timedelta(seconds=10)
    assert request.status_at(NOW) == "pending" and request.status_at(later) == "expired"
    assert not await store.decide_request(
        request.uuid, "approved", device_id=device.id, reason=None, responder_ip=None, now=later
    )


async def test_never_expiring_request_stays_pending() -> None:
    store = MemoryStore()
    user, _ = await store.register_device("u", "127.0.0.1", NOW)
    request = await store.create_request(user.authy_id, new_request(0), NOW)
    assert request.expires_at is None
    assert request.status_at(NOW + timedelta(days=3650)) == "pending"


async def test_totp_steps_are_accepted_once_and_in_order() -> None:
    store = MemoryStore()
    _, device = await store.register_device("u", "127.0.0.1", NOW)
    assert await store.accept_totp_step(device.id, 100)
    assert not await store.accept_totp_step(device.id, 100)
    assert not await store.accept_totp_step(device.id, 99)
    assert await store.accept_totp_step(device.id, 101)


async def test_registering_twice_reuses_user_and_device() -> None:
    store = MemoryStore()
    first = await store.register_device("u", "127.0.0.1", NOW)
    assert await store.register_device("u", "10.0.0.1", NOW) == first
    assert await store.registration_status("u") == first[0].authy_id
    assert first[0].authy_id != 1234
