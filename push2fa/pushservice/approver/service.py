"""The Approver inside a push service app: its settings, its parts, their lifetime."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, cast

from quart import current_app

from push2fa.db import Database
from push2fa.pushservice.approver.rules import ApproverRules
from push2fa.pushservice.service import Emulator
from push2fa.pushservice.store import ApprovalRequest
from push2fa.webauthn import RelyingParty

from .delivery import PushDelivery
from .store import ApproverStore
from .webpush import DEFAULT_TIMEOUT, VapidKey, WebPushSender

log = logging.getLogger(__name__)

EXTENSION_KEY = "push2fa.approver"


@dataclass(frozen=True)
class ApproverSettings:
    database_url: str
    rp: RelyingParty
    vapid: VapidKey
    # Development and tests: push endpoints on http or local addresses (a fake push service).
    allow_insecure_push: bool = False
    push_timeout: float = DEFAULT_TIMEOUT


class Approver:
    def __init__(self, settings: ApproverSettings, emulator: Emulator) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.store = ApproverStore(self.db)
        self.sender = WebPushSender(settings.vapid, timeout=settings.push_timeout)
        self.delivery = PushDelivery(self.store, self.sender)
        self.rules = ApproverRules(
            emulator, self.store, settings.rp, allow_insecure_push=settings.allow_insecure_push
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        emulator.realtime.created_listeners.append(self.request_created)

    async def start(self) -> None:
        await self.sender.open()

    async def stop(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.settings.push_timeout)
        await self.sender.close()
        await self.db.dispose()

    def request_created(self, request: ApprovalRequest) -> None:
        """Wake the phones without holding up the Authy API's answer."""
        task = asyncio.create_task(self.delivery.request_created(request))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("approver push delivery failed", exc_info=task.exception())


def current_approver() -> Approver:
    return cast(Approver, current_app.extensions[EXTENSION_KEY])
