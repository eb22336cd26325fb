"""The emulator's Redis store: the in-memory store's behaviour, kept across restarts and
agreed on by several emulator processes (two store instances here, as two processes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest

from push2fa.pushservice.shared_store import RedisStore
from push2fa.pushservice.store import Decision, MemoryStore, NewApprovalRequest, Store

NOW = datetime.now(UTC).replace(microsecond=0)
Opener = Callable[[], RedisStore]


@pytest.fixture
async def open_store(shared_redis_url: str) -> AsyncIterator[Opener]:
    """Opens stores on one fresh namespace: each call is another emulator process."""
    namespace = f"test-{uuid.uuid4().hex}"
    opened: list[RedisStore] = []

    def open_one() -> RedisStore:
        opened.append(RedisStore.from_url(shared_redis_url, namespace))
        return opened[-1]

    yield open_one
    if opened:
        keys = [key async for key in opened[0].redis.scan_iter(f"{opened[0].prefix}*")]
        if keys:
            await opened[0].redis.delete(*keys)
    for store in opened:
        await store.aclose()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, open_store: Opener) -> MemoryStore | RedisStore:
    return MemoryStore() if request.param == "memory" else open_store()


def new_request(seconds_to_expire: int = 60, **details: str) -> NewApprovalRequest:
    logos = ({"res": "default", "url": "https://example.com/logo.png"},)
    return NewApprovalRequest("Log in?", details, {"challenge": "c1"}, logos, seconds_to_expire)


async def decide(
    store: Store, request_uuid: str, status: Decision, device_id: int, now: datetime = NOW
) -> bool:
    return await store.decide_request(
        request_uuid, status, device_id=device_id, reason="r", responder_ip="10.0.0.9", now=now
    )


async def test_a_request_reads_back_as_it_was_made_and_decided(store):
    user, device = await store.register_device("u-1", "127.0.0.1", NOW)
    made = await store.create_request(user.authy_id, new_request(Username="ana"), NOW)

    assert await store.get_request(made.uuid) == made
    assert await store.pending_requests_for(user.authy_id, NOW) == [made]
    assert await decide(store, made.uuid, "approved", device.id, NOW + timedelta(seconds=1))
    decided = await store.get_request(made.uuid)

    assert decided is not None and decided.status == "approved"
    assert decided.device_id == device.id and decided.reason == "r"
    assert decided.processed_at == NOW + timedelta(seconds=1)
    assert await store.pending_requests_for(user.authy_id, NOW) == []


async def test_expired_or_answered_requests_cannot_be_decided(store):
    user, device = await store.register_device("u-1", "127.0.0.1", NOW)
    expiring = await store.create_request(user.authy_id, new_request(10), NOW)
    answered = await store.create_request(user.authy_id, new_request(), NOW)
    assert await decide(store, answered.uuid, "denied", device.id)

    assert not await decide(
        store, expiring.uuid, "approved", device.id, NOW + timedelta(seconds=10)
    )
    assert not await decide(store, answered.uuid, "approved", device.id)
    assert await store.pending_requests_for(user.authy_id, NOW + timedelta(seconds=10)) == []


async def test_registration_totp_steps_and_deletion(store):
    user, device = await store.register_device("u-1", "127.0.0.1", NOW)
    assert await store.register_device("u-1", "10.0.0.1", NOW) == (user, device)
    assert await store.registration_status("u-1") == user.authy_id
    assert await store.devices_for(user.authy_id) == [device]
    assert await store.accept_totp_step(device.id, 100)
    assert not await store.accept_totp_step(device.id, 100)
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


async def test_a_restarted_emulator_still_knows_devices_and_pending_pushes(open_store):
    before = open_store()
    user, device = await before.register_device("u-7", "127.0.0.1", NOW)
    request = await before.create_request(user.authy_id, new_request(), NOW)
    await before.aclose()

    after = open_store()  # a new process on the same Redis

    assert await after.registration_status("u-7") == user.authy_id
    assert await after.get_device(device.id) == device
    assert await after.pending_requests_for(user.authy_id, NOW) == [request]


async def test_two_emulator_processes_agree_on_one_answer(open_store):
    first, second = open_store(), open_store()
    user, device = await first.register_device("u-1", "127.0.0.1", NOW)
    request = await first.create_request(user.authy_id, new_request(), NOW)
    statuses: list[Decision] = ["approved", "denied"]

    results = await asyncio.gather(
        *(
            decide(store, request.uuid, status, device.id)
            for store in (first, second)
            for status in statuses * 5
        )
    )
    registrations = await asyncio.gather(
        *(store.register_device("u-2", "127.0.0.1", NOW) for store in (first, second) * 5)
    )

    assert results.count(True) == 1
    assert len(set(registrations)) == 1, "one user and device for one custom_user_id"
