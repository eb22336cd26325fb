"""Requests the app no longer wants leave the phone at once.

A login push that was cancelled, replaced by a resend, answered by a recovery or app code,
or expired must not stay pickable on the phone: someone tapping Approve there later would
answer nothing, or worse, be trained to approve stale prompts. Real Authy has no call for
this; push2fa's own push service has one (an extension), so the app calls it only when it
talks to that service. The state machine tells us after commit and publish (never inside
its transaction); the call runs in the background and a failure is only logged, because
the challenge is already final here and the push service refuses answers to it anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from push2fa.authy.client import AuthyClient
from push2fa.authy.errors import AuthyError
from push2fa.domain import challenges
from push2fa.models import ChallengeStatus, LoginChallenge
from push2fa.services import Services

log = logging.getLogger("push2fa.withdrawal")

# Whoever answered through the phone itself: its push service already knows.
PHONE_ANSWERS = frozenset({"webhook", "poll"})


def should_withdraw(new_status: ChallengeStatus, by: str) -> bool:
    """True when the phone's request is still open although the app's challenge ended."""
    if new_status in (ChallengeStatus.CANCELLED, ChallengeStatus.EXPIRED):
        return True
    # Approved, denied or (a code or passkey answer) consumed in one step by something else.
    answered = (ChallengeStatus.APPROVED, ChallengeStatus.DENIED, ChallengeStatus.CONSUMED)
    return new_status in answered and by not in PHONE_ANSWERS


class Withdrawer:
    """Takes ended challenges' pushes off the phone through the push service."""

    def __init__(self, client: AuthyClient) -> None:
        self._client = client
        self._tasks: set[asyncio.Task[Any]] = set()

    async def challenges_ended(
        self, ended: Sequence[LoginChallenge], new_status: ChallengeStatus, by: str
    ) -> None:
        if not should_withdraw(new_status, by):
            return
        for challenge in ended:
            if challenge.provider_uuid:
                task = asyncio.create_task(self._withdraw(challenge.provider_uuid))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _withdraw(self, provider_uuid: str) -> None:
        try:
            await self._client.withdraw_approval_request(provider_uuid)
        except AuthyError as exc:
            log.warning("could not withdraw push %s…: %s", provider_uuid[:8], exc)

    async def settle(self) -> None:
        """Wait for the calls in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def install(svc: Services) -> None:
    """A start-up hook: with push2fa's own push service (the only one that can withdraw a
    push), every challenge that ends unanswered has its push withdrawn from the phone."""
    if not svc.settings.uses_emulator:
        return
    withdrawer = Withdrawer(svc.push_client())
    svc.withdrawer = withdrawer
    challenges.on_end(svc.realtime, withdrawer.challenges_ended)
