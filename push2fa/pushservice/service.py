"""What push2fa's push service does, independent of which door the request came in by.

The Authy API, the control API and the phone page are thin front ends over
:class:`Emulator` (the class keeps its old name): one place creates a push (store, then
tell the phone, then arm the expiry notice), one place decides it (conditional store
update; only the winner notifies the phone and sends the callback), one place withdraws
it, one place enrols a device. Front ends map the domain errors of :mod:`.errors` to their
own answer format.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, cast

from quart import current_app

from push2fa.pushservice.probing import FailureLimiter

from . import payloads, totp
from .callbacks import CallbackSender
from .errors import (
    DeviceMissing,
    NotYourRequest,
    RequestNotPending,
    TokenRejected,
    UnknownRequest,
    UnknownUser,
)
from .phone_session import PhoneCookies
from .phone_updates import PhoneRealtime
from .registration import registration_from
from .settings import EmulatorSettings
from .sql_store import SqlStore
from .store import (
    ApprovalRequest,
    Decision,
    Device,
    NewApprovalRequest,
    Store,
    User,
)

log = logging.getLogger(__name__)

EXTENSION_KEY = "push2fa.emulator"
_TOKEN = re.compile(r"[0-9]{6,12}")
PRUNE_EVERY_SECONDS = 3600.0


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Decided:
    request: ApprovalRequest
    device: Device


class Emulator:
    """push2fa's Authy-compatible push service: state, phone notifications, callbacks."""

    def __init__(self, settings: EmulatorSettings, store: Store | None = None) -> None:
        self.settings = settings
        self.store: Store = SqlStore(settings.database_url) if store is None else store
        self.cookies = PhoneCookies(settings.secret_key)
        self.realtime = PhoneRealtime(self.store, self.cookies)
        self.callbacks = CallbackSender(settings)
        self._expiry_timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pruner: asyncio.Task[None] | None = None
        self.probing = FailureLimiter()

    async def start(self) -> None:
        await self.callbacks.open()
        await self.realtime.start()
        self._pruner = asyncio.create_task(self._prune_forever(), name="pushservice-prune")

    async def _prune_forever(self) -> None:
        while True:
            try:
                await self.store.prune(now_utc())
            except Exception:  # a failed round is retried at the next one
                log.exception("pruning the push service's old requests failed")
            await asyncio.sleep(PRUNE_EVERY_SECONDS)

    async def stop(self) -> None:
        if self._pruner is not None:
            self._pruner.cancel()
            await asyncio.gather(self._pruner, return_exceptions=True)
            self._pruner = None
        for timer in self._expiry_timers.values():
            timer.cancel()
        self._expiry_timers.clear()
        if self._tasks:  # callbacks in flight get their normal time, then are cut
            tasks = set(self._tasks)
            await asyncio.wait(tasks, timeout=self.settings.callback_timeout)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.realtime.stop()
        await self.callbacks.close()
        await self.store.close()

    # --- users -----------------------------------------------------------------------

    async def create_user(self, email: str, cellphone: str, country_code: int) -> User:
        return await self.store.create_user(email, cellphone, country_code, now_utc())

    async def user(self, authy_id: int) -> tuple[User, list[Device]]:
        user = await self.store.get_user(authy_id)
        if user is None:
            raise UnknownUser(authy_id)
        return user, await self.store.devices_for(authy_id)

    async def delete_user(self, authy_id: int) -> None:
        if not await self.store.delete_user(authy_id):
            raise UnknownUser(authy_id)

    async def enrol(self, token: str, ip: str) -> Device:
        """Scan a registration token: spend it and add a new device to its account. A token
        that was used, has expired or is not this application's is refused (raises
        RegistrationRejected) and changes nothing."""
        now = now_utc()
        registration = registration_from(token, self.settings, now)
        _, device = await self.store.register_device(
            registration.custom_user_id,
            ip,
            now,
            token_hash=registration.token_hash,
            token_expires_at=registration.expires_at,
        )
        return device

    async def enrol_by_claim(self, claim_hash: str, authy_id: int, ip: str) -> Device:
        """Add a device to an existing ``users/new`` user with a claim won by proving its
        e-mail (the Approver's e-mail code): spent once, for a user of that e-mail only,
        in the transaction that adds the device; otherwise ClaimRejected, nothing changed."""
        return await self.store.register_device_by_claim(claim_hash, authy_id, ip, now_utc())

    async def verify_token(self, token: str, authy_id: int) -> Device:
        _, devices = await self.user(authy_id)
        if not _TOKEN.fullmatch(token):
            raise TokenRejected(reused=False)
        now = now_utc().timestamp()
        reused = False
        for device in devices:
            step = totp.matching_step(device.totp_secret, token, now)
            if step is None:
                continue
            if await self.store.accept_totp_step(device.id, step):
                return device
            reused = True
        raise TokenRejected(reused=reused)

    async def current_code(self, authy_id: int) -> dict[str, Any]:
        device = await self._first_device(authy_id)
        now = now_utc().timestamp()
        return {
            "code": totp.code_at(device.totp_secret, now),
            "seconds_left": totp.seconds_left(now),
        }

    async def _first_device(self, authy_id: int) -> Device:
        devices = await self.store.devices_for(authy_id)
        if not devices:
            await self._missing(authy_id)
        return devices[0]

    async def _missing(self, authy_id: int) -> NoReturn:
        """Raise why ``authy_id`` has no device: no such user, or a user without one."""
        if await self.store.get_user(authy_id) is None:
            raise UnknownUser(authy_id)
        raise DeviceMissing(authy_id)

    # --- approval requests -----------------------------------------------------------

    async def create_request(self, authy_id: int, new: NewApprovalRequest) -> ApprovalRequest:
        """One statement on the login's hot path: stored only if a device can answer it."""
        request = await self.store.create_request(authy_id, new, now_utc())
        if request is None:
            await self._missing(authy_id)
        await self.realtime.request_created(request)
        self._arm_expiry_notice(request)
        return request

    async def request(self, request_uuid: str) -> ApprovalRequest:
        request = await self.store.get_request(request_uuid)
        if request is None:
            raise UnknownRequest(request_uuid)
        return request

    async def request_status(self, request_uuid: str) -> dict[str, Any]:
        request = await self.request(request_uuid)
        user = await self.store.get_user(request.authy_id)
        device = (
            None if request.device_id is None else await self.store.get_device(request.device_id)
        )
        return payloads.approval_status(self.settings, request, user, device, now_utc())

    async def pending_requests(self, authy_id: int) -> list[ApprovalRequest]:
        await self._first_device(authy_id)
        return await self.store.pending_requests_for(authy_id, now_utc())

    async def decide(
        self,
        request_uuid: str,
        status: Decision,
        *,
        reason: str | None = None,
        responder_ip: str | None = None,
        phone_devices: tuple[int, ...] | None = None,
    ) -> Decided:
        """Answer a pending request as the phone would. ``phone_devices`` limits who may
        answer to a phone's own devices; None (the control API) answers for the user."""
        request = await self.request(request_uuid)
        device = await self._answering_device(request, phone_devices)
        decided = await self.store.decide_request(
            request_uuid,
            status,
            device_id=device.id,
            reason=reason,
            responder_ip=responder_ip,
            now=now_utc(),
        )
        if decided is None:
            raise RequestNotPending(request_uuid)
        timer = self._expiry_timers.pop(request_uuid, None)
        if timer is not None:
            timer.cancel()
        await self.realtime.request_decided(decided)
        return Decided(decided, device)

    async def withdraw(self, request_uuid: str) -> ApprovalRequest:
        """The app no longer wants an answer (push2fa extension, not in Authy's API): the
        request leaves the phone at once and can no longer be answered. Withdrawing one
        that was answered, expired or withdrawn already changes nothing (RequestNotPending)."""
        withdrawn = await self.store.withdraw_request(request_uuid, now_utc())
        if withdrawn is None:
            await self.request(request_uuid)  # UnknownRequest if there is none
            raise RequestNotPending(request_uuid)
        timer = self._expiry_timers.pop(request_uuid, None)
        if timer is not None:
            timer.cancel()
        await self.realtime.request_withdrawn(withdrawn)
        return withdrawn

    async def _answering_device(
        self, request: ApprovalRequest, phone_devices: tuple[int, ...] | None
    ) -> Device:
        devices = await self.store.devices_for(request.authy_id)
        if phone_devices is not None:
            devices = [d for d in devices if d.id in phone_devices]
            if not devices:
                raise NotYourRequest(request.uuid)
        if not devices:
            raise DeviceMissing(request.authy_id)
        return devices[0]

    # --- callbacks -------------------------------------------------------------------

    async def send_callback(self, decided: Decided) -> int | None:
        body = payloads.approval_callback(self.settings, decided.request, decided.device, now_utc())
        return await self.callbacks.send(body)

    def send_callback_later(self, decided: Decided) -> None:
        self._spawn(self.send_callback(decided))

    async def send_test_callback(self) -> int | None:
        return await self.callbacks.send(payloads.test_callback(self.settings, now_utc()))

    # --- expiry notices --------------------------------------------------------------

    def _arm_expiry_notice(self, request: ApprovalRequest) -> None:
        if request.expires_at is None:
            return
        delay = max(0.0, (request.expires_at - now_utc()).total_seconds())
        loop = asyncio.get_running_loop()
        self._expiry_timers[request.uuid] = loop.call_later(delay, self._expiry_due, request.uuid)

    def _expiry_due(self, request_uuid: str) -> None:
        self._expiry_timers.pop(request_uuid, None)
        self._spawn(self._announce_expiry(request_uuid))

    async def _announce_expiry(self, request_uuid: str) -> None:
        request = await self.store.get_request(request_uuid)
        unanswered = request is not None and request.status == "pending"
        if request is not None and unanswered and request.status_at(now_utc()) == "expired":
            await self.realtime.request_expired(request)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("push service background task failed", exc_info=task.exception())


def current_emulator() -> Emulator:
    return cast(Emulator, current_app.extensions[EXTENSION_KEY])
