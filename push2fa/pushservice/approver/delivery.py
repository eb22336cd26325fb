"""Waking the account's phones when a request is created, and keeping subscriptions clean.

Each enrolled phone with a push subscription gets the wake-up hint, in parallel, with the
request's remaining life as TTL. What the push service answers is recorded per
subscription: a dead one is dropped, a throttled one rests until its Retry-After, a refused
one is kept and logged. A push is only a hint: the open Approver also hears the request over
Socket.IO and fetches pending requests whenever it comes to the foreground.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from push2fa.pushservice.store import ApprovalRequest

from .store import ApproverStore, StoredSubscription
from .webpush import Outcome, Subscription, WebPushSender

log = logging.getLogger(__name__)

NO_EXPIRY_TTL = 600
TEST_PUSH_TTL = 60


class PushDelivery:
    def __init__(self, store: ApproverStore, sender: WebPushSender) -> None:
        self.store = store
        self.sender = sender

    async def request_created(self, request: ApprovalRequest) -> None:
        now = datetime.now(UTC)
        ttl = NO_EXPIRY_TTL
        if request.expires_at is not None:
            ttl = max(0, int((request.expires_at - now).total_seconds()))
        targets = [
            s
            for s in await self.store.subscriptions_for(request.authy_id)
            if s.paused_until is None or s.paused_until <= now
        ]
        await asyncio.gather(*(self._one(s, request.uuid, ttl) for s in targets))

    async def test_push(self, stored: StoredSubscription) -> Outcome:
        """A push with no request in it, asked for from the security page: the phone shows
        a notification, and the page learns whether the push service took it."""
        return await self._one(stored, "", TEST_PUSH_TTL)

    async def _one(self, stored: StoredSubscription, request_id: str, ttl: int) -> Outcome:
        subscription = Subscription(stored.endpoint, stored.p256dh, stored.auth)
        result = await self.sender.send(subscription, request_id, ttl)
        now = datetime.now(UTC)
        if result.outcome is Outcome.GONE:
            await self.store.drop_subscription(stored.id)
            return result.outcome
        paused = None
        if result.outcome is Outcome.RETRY_LATER and result.retry_after is not None:
            paused = now + timedelta(seconds=result.retry_after)
        await self.store.note_push(
            stored.id,
            result.status,
            now,
            delivered=result.outcome is Outcome.DELIVERED,
            paused_until=paused,
        )
        return result.outcome
