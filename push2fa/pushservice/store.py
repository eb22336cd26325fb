"""State of the emulator: users, devices, registrations and approval requests.

The records are immutable and every store method is async, so a shared backend (Redis, SQL)
can replace :class:`MemoryStore` when several emulator workers must agree. Changes that can
race — deciding a request, accepting a TOTP step — are conditional updates that report
whether they won, like the ``UPDATE ... WHERE status = 'pending'`` a database would run.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol

from . import totp

RequestStatus = Literal["pending", "approved", "denied", "expired"]
Decision = Literal["approved", "denied"]

# Answered or expired requests stay readable this long, then go, so memory stays bounded.
RETENTION = timedelta(days=7)
_PURGE_EVERY = 1000

# The console's test callback uses authy_id 1234 and apps ignore it, so no real user gets it.
TEST_CALLBACK_AUTHY_ID = 1234


@dataclass(frozen=True)
class User:
    authy_id: int
    object_id: str
    created_at: datetime
    email: str | None = None
    cellphone: str | None = None
    country_code: int | None = None
    custom_user_id: str | None = None


@dataclass(frozen=True)
class Device:
    id: int
    authy_id: int
    totp_secret: bytes
    registered_at: datetime
    registration_ip: str
    os_type: str = "android"
    last_totp_step: int = -1


@dataclass(frozen=True)
class ApprovalRequest:
    uuid: str
    object_id: str
    authy_id: int
    message: str
    details: Mapping[str, str]
    hidden_details: Mapping[str, str]
    logos: tuple[Mapping[str, str], ...] | None
    seconds_to_expire: int
    created_at: datetime
    updated_at: datetime
    status: Literal["pending", "approved", "denied"] = "pending"
    processed_at: datetime | None = None
    device_id: int | None = None
    reason: str | None = None
    responder_ip: str | None = None

    @property
    def expires_at(self) -> datetime | None:
        if self.seconds_to_expire == 0:
            return None
        return self.created_at + timedelta(seconds=self.seconds_to_expire)

    def status_at(self, now: datetime) -> RequestStatus:
        """The status as Authy reports it: an unanswered request past its expiry is expired."""
        expires_at = self.expires_at
        if self.status == "pending" and expires_at is not None and now >= expires_at:
            return "expired"
        return self.status


@dataclass(frozen=True)
class NewApprovalRequest:
    message: str
    details: Mapping[str, str]
    hidden_details: Mapping[str, str]
    logos: tuple[Mapping[str, str], ...] | None
    seconds_to_expire: int


def build_request(authy_id: int, new: NewApprovalRequest, now: datetime) -> ApprovalRequest:
    """A fresh pending approval request, the same for every store."""
    return ApprovalRequest(
        uuid=new_request_uuid(),
        object_id=new_object_id(),
        authy_id=authy_id,
        message=new.message,
        details=dict(new.details),
        hidden_details=dict(new.hidden_details),
        logos=new.logos,
        seconds_to_expire=new.seconds_to_expire,
        created_at=now,
        updated_at=now,
    )


class Store(Protocol):
    async def create_user(
        self, email: str, cellphone: str, country_code: int, now: datetime
    ) -> User: ...
    async def get_user(self, authy_id: int) -> User | None: ...
    async def delete_user(self, authy_id: int) -> bool: ...
    async def register_device(
        self, custom_user_id: str, registration_ip: str, now: datetime
    ) -> tuple[User, Device]: ...
    async def registration_status(self, custom_user_id: str) -> int | None: ...
    async def get_device(self, device_id: int) -> Device | None: ...
    async def devices_for(self, authy_id: int) -> list[Device]: ...
    async def accept_totp_step(self, device_id: int, step: int) -> bool: ...
    async def create_request(
        self, authy_id: int, new: NewApprovalRequest, now: datetime
    ) -> ApprovalRequest: ...
    async def get_request(self, request_uuid: str) -> ApprovalRequest | None: ...
    async def decide_request(
        self,
        request_uuid: str,
        status: Decision,
        *,
        device_id: int,
        reason: str | None,
        responder_ip: str | None,
        now: datetime,
    ) -> bool: ...
    async def pending_requests_for(self, authy_id: int, now: datetime) -> list[ApprovalRequest]: ...


def new_request_uuid() -> str:
    """A time-based UUID like Authy's, with a random node instead of this host's MAC."""
    node = secrets.randbits(48) | 0x010000000000  # multicast bit: not a real MAC (RFC 4122)
    return str(uuid.uuid1(node=node))


def new_object_id() -> str:
    """A 24-hex id, the shape of Authy's internal ``_id``/``user_id`` fields."""
    return secrets.token_hex(12)


class MemoryStore:
    """The single-process store. Each method runs without awaiting between its read and its
    write, and under one lock, so concurrent tasks see every change as atomic."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._users: dict[int, User] = {}
        self._phones: dict[tuple[int, str], int] = {}
        self._registrations: dict[str, int] = {}
        self._devices: dict[int, Device] = {}
        self._requests: dict[str, ApprovalRequest] = {}
        self._created_since_purge = 0

    def _new_authy_id(self) -> int:
        # Random rather than sequential: after a restart of the in-memory emulator, an app
        # that still holds old ids must not find them handed to somebody else.
        while True:
            candidate = 10_000_000 + secrets.randbelow(90_000_000)
            if candidate not in self._users and candidate != TEST_CALLBACK_AUTHY_ID:
                return candidate

    def _new_device_id(self) -> int:
        while True:
            candidate = 1_000_000 + secrets.randbelow(9_000_000)
            if candidate not in self._devices:
                return candidate

    async def create_user(
        self, email: str, cellphone: str, country_code: int, now: datetime
    ) -> User:
        async with self._lock:
            existing = self._phones.get((country_code, cellphone))
            if existing is not None:
                return self._users[existing]
            user = User(
                authy_id=self._new_authy_id(),
                object_id=new_object_id(),
                created_at=now,
                email=email,
                cellphone=cellphone,
                country_code=country_code,
            )
            self._users[user.authy_id] = user
            self._phones[(country_code, cellphone)] = user.authy_id
            return user

    async def get_user(self, authy_id: int) -> User | None:
        return self._users.get(authy_id)

    async def delete_user(self, authy_id: int) -> bool:
        async with self._lock:
            user = self._users.pop(authy_id, None)
            if user is None:
                return False
            if user.cellphone is not None and user.country_code is not None:
                self._phones.pop((user.country_code, user.cellphone), None)
            if user.custom_user_id is not None:
                self._registrations.pop(user.custom_user_id, None)
            for device_id in [d.id for d in self._devices.values() if d.authy_id == authy_id]:
                del self._devices[device_id]
            for key in [k for k, r in self._requests.items() if r.authy_id == authy_id]:
                del self._requests[key]
            return True

    async def register_device(
        self, custom_user_id: str, registration_ip: str, now: datetime
    ) -> tuple[User, Device]:
        async with self._lock:
            authy_id = self._registrations.get(custom_user_id)
            if authy_id is not None:
                user = self._users[authy_id]
                device = next(d for d in self._devices.values() if d.authy_id == authy_id)
                return user, device
            user = User(
                authy_id=self._new_authy_id(),
                object_id=new_object_id(),
                created_at=now,
                custom_user_id=custom_user_id,
            )
            device = Device(
                id=self._new_device_id(),
                authy_id=user.authy_id,
                totp_secret=totp.new_secret(),
                registered_at=now,
                registration_ip=registration_ip,
            )
            self._users[user.authy_id] = user
            self._devices[device.id] = device
            self._registrations[custom_user_id] = user.authy_id
            return user, device

    async def registration_status(self, custom_user_id: str) -> int | None:
        return self._registrations.get(custom_user_id)

    async def get_device(self, device_id: int) -> Device | None:
        return self._devices.get(device_id)

    async def devices_for(self, authy_id: int) -> list[Device]:
        return [d for d in self._devices.values() if d.authy_id == authy_id]

    async def accept_totp_step(self, device_id: int, step: int) -> bool:
        async with self._lock:
            device = self._devices.get(device_id)
            if device is None or step <= device.last_totp_step:
                return False
            self._devices[device_id] = replace(device, last_totp_step=step)
            return True

    async def create_request(
        self, authy_id: int, new: NewApprovalRequest, now: datetime
    ) -> ApprovalRequest:
        request = build_request(authy_id, new, now)
        async with self._lock:
            self._requests[request.uuid] = request
            self._created_since_purge += 1
            if self._created_since_purge >= _PURGE_EVERY:
                self._purge_finished(now)
        return request

    def _purge_finished(self, now: datetime) -> None:
        self._created_since_purge = 0
        cutoff = now - RETENTION
        for key, request in list(self._requests.items()):
            finished_at = request.processed_at or request.expires_at
            if finished_at is not None and finished_at < cutoff:
                del self._requests[key]

    async def get_request(self, request_uuid: str) -> ApprovalRequest | None:
        return self._requests.get(request_uuid)

    async def decide_request(
        self,
        request_uuid: str,
        status: Decision,
        *,
        device_id: int,
        reason: str | None,
        responder_ip: str | None,
        now: datetime,
    ) -> bool:
        async with self._lock:
            request = self._requests.get(request_uuid)
            if request is None or request.status_at(now) != "pending":
                return False
            self._requests[request_uuid] = replace(
                request,
                status=status,
                processed_at=now,
                updated_at=now,
                device_id=device_id,
                reason=reason,
                responder_ip=responder_ip,
            )
            return True

    async def pending_requests_for(self, authy_id: int, now: datetime) -> list[ApprovalRequest]:
        pending = [
            r
            for r in self._requests.values()
            if r.authy_id == authy_id and r.status_at(now) == "pending"
        ]
        return sorted(pending, key=lambda r: r.created_at)
