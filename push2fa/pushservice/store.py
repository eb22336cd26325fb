"""The push service's records (users, devices, approval requests) and the store interface.

The records are immutable values; :class:`Store` is what the service needs of its storage.
The one implementation keeps them in the app's database (:mod:`.sql_store`), so enrolled
phones survive a restart and every worker and host agrees. Changes that can race —
registering with a token, deciding or withdrawing a request, accepting a TOTP step — report
whether they won, like the ``UPDATE ... WHERE status = 'pending'`` that implements them.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

RequestStatus = Literal["pending", "approved", "denied", "expired"]
StoredStatus = Literal["pending", "approved", "denied", "withdrawn"]
Decision = Literal["approved", "denied"]

# Answered, withdrawn or expired requests stay readable this long, then are pruned.
RETENTION = timedelta(days=7)
# Users and devices get random ids from this range: ids that leak (logs, a URL) say
# nothing about others, and trying ids blindly finds nothing. JavaScript-safe integers.
ID_LOW = 10**12
ID_HIGH = 2**53

# E-mail addresses are compared with their ASCII letters in lower case and nothing else
# folded: "Ann@Example.COM" is "ann@example.com", but no two different non-ASCII spellings
# are ever taken for one address (Unicode case folding would make "ß" and "ss" one).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

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
    status: StoredStatus = "pending"
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
        """The status as Authy reports it: an unanswered request past its expiry is expired,
        and so is one the app withdrew (Authy has no word for it; nobody will answer it)."""
        if self.status == "withdrawn":
            return "expired"
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
        self,
        custom_user_id: str,
        registration_ip: str,
        now: datetime,
        *,
        token_hash: str,
        token_expires_at: datetime,
    ) -> tuple[User, Device]:
        """Spend the token (raise TokenAlreadyUsed if it was) and add a new device to the
        user of ``custom_user_id`` (made if new), in one transaction."""
        ...

    async def registration_status(self, custom_user_id: str) -> int | None: ...
    async def users_with_email(self, email_key: str) -> list[User]:
        """The users ``users/new`` created with this e-mail (see :func:`email_key`)."""
        ...

    async def issue_email_code(
        self, code_id: str, email_key: str, code_hash: str, now: datetime, expires_at: datetime
    ) -> None:
        """Keep a new code for the address; its earlier unused codes stop working."""
        ...

    async def try_email_code(
        self, email_key: str, now: datetime, max_tries: int
    ) -> list[tuple[str, str]]:
        """Count one try on each live code of the address and return their (id, hash): a
        code tried ``max_tries`` times, claimed, used or expired is no longer returned."""
        ...

    async def claim_email_code(self, code_id: str, claim_hash: str, now: datetime) -> bool:
        """Exchange a live code for a claim, once; False if it was claimed or died first."""
        ...

    async def email_of_claim(self, claim_hash: str, now: datetime) -> str | None:
        """The e-mail key a live, unspent claim proves, or None."""
        ...

    async def register_device_by_claim(
        self, claim_hash: str, authy_id: int, registration_ip: str, now: datetime
    ) -> Device:
        """Spend the claim for one user of its e-mail and add a new device to that user, in
        one transaction; ClaimRejected (nothing changed) if the claim is not live or the
        user does not have its e-mail."""
        ...

    async def get_device(self, device_id: int) -> Device | None: ...
    async def devices_for(self, authy_id: int) -> list[Device]: ...
    async def remove_device(self, authy_id: int, device_id: int) -> bool: ...
    async def accept_totp_step(self, device_id: int, step: int) -> bool: ...
    async def create_request(
        self, authy_id: int, new: NewApprovalRequest, now: datetime
    ) -> ApprovalRequest | None:
        """Store a new pending request, or None (nothing stored) if the user has no device."""
        ...

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
    ) -> ApprovalRequest | None:
        """pending → approved | denied, once, if not expired; the request as decided, or
        None if another answer (or the expiry, or a withdrawal) came first."""
        ...

    async def withdraw_request(self, request_uuid: str, now: datetime) -> ApprovalRequest | None:
        """pending → withdrawn, once; the request as withdrawn, or None if it was not pending."""
        ...

    async def pending_requests_for(self, authy_id: int, now: datetime) -> list[ApprovalRequest]: ...
    async def prune(self, now: datetime) -> None:
        """Forget finished requests past the retention time, and tokens and e-mail codes
        past their expiry."""
        ...

    async def close(self) -> None: ...


def email_key(email: str) -> str:
    """An e-mail address as the store compares it: trimmed, ASCII letters in lower case."""
    return email.strip().translate(_ASCII_LOWER)


def new_id() -> int:
    """A random user or device id (see ID_LOW)."""
    return ID_LOW + secrets.randbelow(ID_HIGH - ID_LOW)


def new_request_uuid() -> str:
    """A time-based UUID like Authy's, with a random node instead of this host's MAC."""
    node = secrets.randbits(48) | 0x010000000000  # multicast bit: not a real MAC (RFC 4122)
    return str(uuid.uuid1(node=node))


def new_object_id() -> str:
    """A 24-hex id, the shape of Authy's internal ``_id``/``user_id`` fields."""
    return secrets.token_hex(12)
