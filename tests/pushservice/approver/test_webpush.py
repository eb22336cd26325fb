"""Web Push delivery against a fake push service that decrypts and checks VAPID."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path

import pytest

from push2fa.pushservice.approver.webpush import (
    DEFAULT_RETRY_AFTER,
    BadSubscription,
    Outcome,
    Subscription,
    VapidKey,
    WebPushSender,
    check_subject,
    parse_subscription,
    retry_after_seconds,
)
from tests.pushservice.approver.fake_push import FakePushService, fake_push_service

SUBJECT = "mailto:admin@push2fa.example"


@pytest.fixture
async def push_service() -> AsyncIterator[FakePushService]:
    async with fake_push_service() as service:
        yield service


@pytest.fixture
async def sender(tmp_path: Path) -> AsyncIterator[WebPushSender]:
    key = VapidKey.from_settings("", SUBJECT, instance_path=str(tmp_path), production=False)
    pusher = WebPushSender(key, timeout=2.0)
    await pusher.open()
    yield pusher
    await pusher.close()


def subscription_of(phone_json: dict[str, object]) -> Subscription:
    return parse_subscription(phone_json, allow_insecure=True)


async def test_a_push_arrives_encrypted_signed_and_carrying_only_the_request_id(
    push_service: FakePushService, sender: WebPushSender
) -> None:
    phone = push_service.new_phone()
    result = await sender.send(subscription_of(phone.subscription()), "req-123", ttl=90)
    assert result.outcome is Outcome.DELIVERED
    [delivered] = push_service.delivered
    assert delivered.vapid_ok
    assert push_service.payloads() == [{"v": 1, "request": "req-123"}]
    assert delivered.headers["Content-Encoding"] == "aes128gcm"
    assert delivered.headers["TTL"] == "90"
    assert delivered.headers["Urgency"] == "high"
    assert delivered.claims["aud"] == push_service.url
    assert delivered.claims["sub"] == SUBJECT
    assert delivered.claims["exp"] <= time.time() + 24 * 3600


async def test_each_send_signs_for_its_own_push_service(
    push_service: FakePushService, sender: WebPushSender
) -> None:
    async with fake_push_service() as other:
        first, second = push_service.new_phone(), other.new_phone()
        await sender.send(subscription_of(first.subscription()), "a", ttl=60)
        await sender.send(subscription_of(second.subscription()), "b", ttl=60)
        assert push_service.delivered[0].claims["aud"] == push_service.url
        assert other.delivered[0].claims["aud"] == other.url


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(404, Outcome.GONE), (410, Outcome.GONE), (413, Outcome.REJECTED), (403, Outcome.REJECTED)],
)
async def test_the_push_services_refusal_says_what_to_do_with_the_subscription(
    push_service: FakePushService, sender: WebPushSender, status: int, outcome: Outcome
) -> None:
    phone = push_service.new_phone(answer=status)
    result = await sender.send(subscription_of(phone.subscription()), "r", ttl=60)
    assert (result.outcome, result.status) == (outcome, status)


async def test_throttling_is_honoured_for_as_long_as_retry_after_says(
    push_service: FakePushService, sender: WebPushSender
) -> None:
    phone = push_service.new_phone(answer=429, **{"Retry-After": "120"})
    result = await sender.send(subscription_of(phone.subscription()), "r", ttl=60)
    assert result.outcome is Outcome.RETRY_LATER
    assert result.retry_after == 120


async def test_a_push_service_that_does_not_answer_is_a_failure_within_the_timeout(
    tmp_path: Path,
) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts, never answers
    key = VapidKey.from_settings("", SUBJECT, instance_path=str(tmp_path), production=False)
    pusher = WebPushSender(key, timeout=0.5)
    await pusher.open()
    try:
        from tests.pushservice.approver.fake_push import Phone

        phone = Phone(f"http://127.0.0.1:{silent.getsockname()[1]}/push/x")
        started = time.monotonic()
        result = await asyncio.wait_for(
            pusher.send(subscription_of(phone.subscription()), "r", ttl=60), 5
        )
        assert result.outcome is Outcome.FAILED
        assert time.monotonic() - started < 2
    finally:
        await pusher.close()
        silent.close()


def test_retry_after_reads_seconds_and_dates_and_is_bounded() -> None:
    assert retry_after_seconds("30") == 30
    assert retry_after_seconds(None) == DEFAULT_RETRY_AFTER
    assert retry_after_seconds("soon") == DEFAULT_RETRY_AFTER
    assert retry_after_seconds("99999999") == 3600
    now = time.time()
    assert 55 <= retry_after_seconds(formatdate(now + 60, usegmt=True), now=now) <= 60


def test_the_development_vapid_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = VapidKey.from_settings("", SUBJECT, instance_path=str(tmp_path), production=False)
    again = VapidKey.from_settings("", SUBJECT, instance_path=str(tmp_path), production=False)
    assert first.application_server_key == again.application_server_key
    assert len(first.application_server_key) == 87  # 65 bytes, base64url
    assert (tmp_path / "vapid_private_key.pem").stat().st_mode & 0o077 == 0


def test_production_needs_a_configured_key_and_a_real_subject(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PUSH2FA_VAPID_PRIVATE_KEY"):
        VapidKey.from_settings("", SUBJECT, instance_path=str(tmp_path), production=True)
    with pytest.raises(ValueError, match="not a VAPID private key"):
        VapidKey.from_settings("nonsense", SUBJECT, instance_path=str(tmp_path), production=True)
    for subject in ("mailto:admin@localhost", "https://push2fa.local", "admin@example.org"):
        with pytest.raises(ValueError):
            check_subject(subject, production=True)
    check_subject("mailto:admin@localhost", production=False)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/fcm/send/x",  # not https
        "https://127.0.0.1/push/x",  # an address inside the network
        "https://[::1]/push/x",
        "https://10.0.0.5/push/x",
        "https://localhost/push/x",
        "https://metadata.internal/x",
        "ftp://example.org/x",
    ],
)
def test_production_posts_only_to_public_https_push_services(endpoint: str) -> None:
    from tests.pushservice.approver.fake_push import Phone

    data = Phone(endpoint).subscription()
    with pytest.raises(BadSubscription):
        parse_subscription(data)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"endpoint": "https://fcm.googleapis.com/x"},
        {"endpoint": "https://fcm.googleapis.com/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}},
        {"endpoint": "https://fcm.googleapis.com/x", "keys": "k"},
        {"endpoint": "https://fcm.googleapis.com/" + "x" * 3000, "keys": {}},
    ],
)
def test_malformed_subscriptions_are_refused(data: object) -> None:
    with pytest.raises(BadSubscription):
        parse_subscription(data)


def test_a_real_looking_subscription_is_accepted() -> None:
    from tests.pushservice.approver.fake_push import Phone

    data = Phone("https://fcm.googleapis.com/fcm/send/abc").subscription()
    assert parse_subscription(data).endpoint == "https://fcm.googleapis.com/fcm/send/abc"
