"""The Approver inside a push service app: its settings, its parts, their lifetime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, cast

from quart import current_app, request
from quart_rate_limiter.store import MemoryStore, RateLimiterStoreABC

from push2fa.db import Database
from push2fa.pushservice.approver.rules import ApproverRules
from push2fa.pushservice.service import Emulator
from push2fa.pushservice.store import ApprovalRequest
from push2fa.webauthn import RelyingParty

from .delivery import PushDelivery
from .email_codes import EmailCodes, SendMail
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
    # Sends the codes that let a users/new account prove its e-mail (to, subject, body);
    # None: that way in is off and the Approver says so.
    send_mail: SendMail | None = None
    email_code_minutes: int = 10
    email_code_tries: int = 5
    # Rate limits of the e-mail codes: shared by every worker through Redis when set.
    redis_url: str = ""
    rate_limits: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.email_code_minutes <= 60:
            raise ValueError("ApproverSettings.email_code_minutes must be 1..60")
        if not 1 <= self.email_code_tries <= 10:
            raise ValueError("ApproverSettings.email_code_tries must be 1..10")


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
        self.email = EmailCodes(
            emulator,
            settings.send_mail,
            self.spawn,
            minutes=settings.email_code_minutes,
            tries=settings.email_code_tries,
        )
        emulator.realtime.created_listeners.append(self.request_created)

    async def start(self) -> None:
        await self.sender.open()

    async def stop(self) -> None:
        await self.drain(self.settings.push_timeout)
        await self.sender.close()
        await self.db.dispose()

    def request_created(self, request: ApprovalRequest) -> None:
        """Wake the phones without holding up the Authy API's answer."""
        self.spawn(self.delivery.request_created(request))

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Work that must not hold up (or show in) the answer: pushes, mails."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait (at most ``timeout`` seconds) for the background work in flight."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("approver background work failed", exc_info=task.exception())


def current_approver() -> Approver:
    return cast(Approver, current_app.extensions[EXTENSION_KEY])


async def client_key() -> str:
    """The address the trusted proxies vouch for (ProxyFixMiddleware sets it)."""
    return f"ip:{request.remote_addr or '-'}"


def limit_store(settings: ApproverSettings) -> RateLimiterStoreABC:
    if settings.redis_url:
        from quart_rate_limiter.redis_store import RedisStore

        return RedisStore(settings.redis_url)
    return MemoryStore()
