"""Webhook nonces on their own: a callback is fresh only near its own time, in the past or
the future, and each signed callback counts once, even when two copies race. The HTTP
attacks on the webhook are in tests/web/test_webhook_attacks.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from push2fa.domain import webhook_nonces
from push2fa.domain.webhook_nonces import WINDOW_SECONDS
from push2fa.models import WebhookNonce, utcnow
from push2fa.services import Services

NOW = 1_767_225_600.0


@pytest.mark.parametrize("offset", [0, 1, -1, WINDOW_SECONDS, -WINDOW_SECONDS, 0.5])
def test_a_nonce_near_now_is_fresh(offset):
    assert webhook_nonces.is_fresh(str(NOW + offset), NOW)


@pytest.mark.parametrize("offset", [WINDOW_SECONDS + 1, -(WINDOW_SECONDS + 1), 86400, -NOW])
def test_a_nonce_far_from_now_is_stale_past_or_future(offset):
    assert not webhook_nonces.is_fresh(str(NOW + offset), NOW)


@pytest.mark.parametrize("nonce", ["", " ", "abc", "nan", "NaN", "inf", "-inf", "1e999", "0x10"])
def test_a_nonce_that_is_not_a_time_is_not_fresh(nonce):
    assert not webhook_nonces.is_fresh(nonce, NOW)


async def remember(svc: Services, nonce: str, sig: str) -> bool:
    async with svc.db.session() as db:
        fresh = await webhook_nonces.remember(db, nonce, sig)
        await db.commit()
        return fresh


async def stored(svc: Services) -> int:
    async with svc.db.session() as db:
        return int((await db.execute(select(func.count()).select_from(WebhookNonce))).scalar_one())


async def test_a_callback_counts_once_and_its_replay_is_refused(svc):
    assert await remember(svc, str(NOW), "sig-one") is True
    assert await remember(svc, str(NOW), "sig-one") is False
    assert await stored(svc) == 1


async def test_another_signature_at_the_same_second_is_another_callback(svc):
    assert await remember(svc, str(NOW), "sig-one") is True
    assert await remember(svc, str(NOW), "sig-two") is True
    assert await stored(svc) == 2


async def test_a_refused_replay_leaves_the_session_usable(svc):
    await remember(svc, str(NOW), "sig-one")
    async with svc.db.session() as db:
        assert await webhook_nonces.remember(db, str(NOW), "sig-one") is False
        assert await webhook_nonces.remember(db, str(NOW), "sig-two") is True
        await db.commit()
    assert await stored(svc) == 2


async def test_a_callback_whose_decision_rolled_back_may_come_again(svc):
    """Flushed, not committed: if handling the callback fails, the push service's retry is
    not mistaken for a replay."""
    async with svc.db.session() as db:
        assert await webhook_nonces.remember(db, str(NOW), "sig-one") is True
        await db.rollback()
    assert await remember(svc, str(NOW), "sig-one") is True


async def test_two_copies_racing_are_accepted_once(svc):
    results = await asyncio.gather(*(remember(svc, str(NOW), "sig-race") for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert await stored(svc) == 1


async def test_overlong_values_are_stored_cut_not_refused_with_an_error(svc):
    assert await remember(svc, "9" * 200, "s" * 300) is True
    assert await remember(svc, "9" * 200, "s" * 300) is False


async def test_prune_forgets_only_pairs_older_than_twice_the_window(svc):
    now = utcnow()
    async with svc.db.session() as db:
        for name, age in (("old", 2 * WINDOW_SECONDS + 5), ("recent", 2 * WINDOW_SECONDS - 30)):
            db.add(
                WebhookNonce(signature=name, nonce="1", received_at=now - timedelta(seconds=age))
            )
        await db.commit()
        await webhook_nonces.prune(db)
        left = set((await db.execute(select(WebhookNonce.signature))).scalars())
    assert left == {"recent"}
