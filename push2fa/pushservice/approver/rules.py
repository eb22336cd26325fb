"""The Approver's rules: who may enrol a phone, what makes a phone's answer count, and
when a phone may see an account's TOTP code.

A phone's answer counts only if it is a WebAuthn assertion, with user verification, by a
passkey enrolled for the same account whose push service device still exists, over the
SHA-256 of a canonical record of *this* decision: the request, approve/deny/report, the
number the user typed, a server nonce used once, and its expiry. The server rebuilds the
record from its own copy of the nonce and the request; nothing the phone says about what it
signed is trusted. Only then does the push service decide the request, through its one
decision path, which sends the Authy-style signed callback.

A phone joins an account with a :class:`Grant`: the app's registration token (its QR), or a
claim won with a code e-mailed to the address the app registered with ``users/new``
(:mod:`push2fa.pushservice.approver.email_codes`). Either way the same ceremony follows,
and the grant is spent, once, in the push service's store as the device is added. A TOTP
code is as good as an approval, so showing one needs the same signed proof.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from push2fa import webauthn
from push2fa.pushservice import errors, totp
from push2fa.pushservice.approver.store import ApproverStore, Credential
from push2fa.pushservice.approver.webpush import BadSubscription, parse_subscription
from push2fa.pushservice.registration import custom_user_id_from
from push2fa.pushservice.service import Emulator
from push2fa.pushservice.store import ApprovalRequest, Device

RECORD_VERSION = 1
PURPOSE = "push2fa-approver-decision"
ENROL_LIFETIME = timedelta(minutes=5)
DECISION_LIFETIME = timedelta(seconds=120)
CODE_LIFETIME = timedelta(seconds=120)
MAX_NAME_LENGTH = 80
NUMBER = re.compile(r"[0-9]{1,8}")

Decision = Literal["approve", "deny", "report"]
DECISIONS: tuple[Decision, ...] = ("approve", "deny", "report")


class Refused(Exception):
    """An answer or enrolment that does not count; ``status`` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def canonical_record(
    *, request_id: str, decision: str, number: str | None, nonce: bytes, expires_at: datetime
) -> bytes:
    """The bytes whose hash the phone signs: sorted keys, no spaces, ASCII only, so the
    phone and the server build the very same bytes; ``v`` and ``purpose`` keep an
    approval signature from ever passing as any other WebAuthn assertion."""
    record = {
        "v": RECORD_VERSION,
        "purpose": PURPOSE,
        "request": request_id,
        "decision": decision,
        "number": number,
        "nonce": webauthn.b64url(nonce),
        "exp": int(expires_at.timestamp()),
    }
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def record_challenge(record: bytes) -> bytes:
    return hashlib.sha256(record).digest()


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Enrolled:
    device: Device
    credential: Credential
    account: str


@dataclass(frozen=True)
class Grant:
    """What lets one phone join one account. ``spend(ip)`` adds the device and spends the
    grant in one transaction; a grant used or dead meanwhile raises RegistrationRejected
    and adds nothing."""

    account: str  # the name the phone shows, and the passkey's user name
    user_handle: bytes  # the same for every phone of the account
    spend: Callable[[str], Awaitable[Device]]


def user_handle(prefix: str, account: str) -> bytes:
    return hashlib.sha256(f"{prefix}:{account}".encode()).digest()[:32]


@dataclass(frozen=True)
class ApproverRules:
    """The rules, bound to one push service, its relying party and the Approver's store."""

    emulator: Emulator
    store: ApproverStore
    rp: webauthn.RelyingParty
    allow_insecure_push: bool = False

    # --- enrolment -------------------------------------------------------------------

    def token_grant(self, token: Any) -> Grant:
        """The grant of the app's registration token (checked here, spent at enrolment)."""
        account = self._account_of(token)
        return Grant(
            account=account,
            user_handle=user_handle("push2fa-approver", account),
            spend=partial(self.emulator.enrol, token),
        )

    async def enrol_options(self, grant: Grant) -> dict[str, Any]:
        """Options to create this phone's passkey, once the grant is known to be good."""
        ceremony = await self.store.new_ceremony("enrol", ENROL_LIFETIME, now_utc())
        options = webauthn.registration_options(
            self.rp,
            challenge=ceremony.challenge,
            user_handle=grant.user_handle,
            user_name=grant.account,
            require_user_verification=True,
        )
        return {"ceremony": ceremony.id, "publicKey": options, "account": grant.account}

    async def enrol(
        self,
        *,
        ceremony_id: str,
        grant: Grant,
        credential: Any,
        subscription: Any,
        name: str,
        ip: str,
    ) -> Enrolled:
        """Enrol the phone: a passkey made with user verification, over our challenge,
        plus (where the browser could) a push subscription. The grant is spent by the
        push service's own registration path."""
        push = None
        if subscription is not None:
            try:
                push = parse_subscription(subscription, allow_insecure=self.allow_insecure_push)
            except BadSubscription as exc:
                raise Refused(400, str(exc)) from None
        now = now_utc()
        ceremony = await self.store.spend_ceremony(str(ceremony_id), "enrol", now)
        if ceremony is None:
            raise Refused(409, "This enrolment has expired or was already used. Start again.")
        try:
            made = webauthn.verify_registration(
                self.rp, credential, challenge=ceremony.challenge, require_user_verification=True
            )
        except webauthn.CeremonyRejected as exc:
            raise Refused(400, f"{exc}.") from None
        credential_id = webauthn.b64url(made.credential_id)
        if await self.store.credential_by_id(credential_id) is not None:
            raise Refused(409, "This passkey is already enrolled.")
        try:
            device = await grant.spend(ip)
        except errors.RegistrationRejected as exc:
            raise Refused(400, f"Could not add the account: {exc}.") from None
        try:
            stored = await self.store.add_credential(
                device_id=device.id,
                authy_id=device.authy_id,
                credential_id=credential_id,
                public_key=made.public_key,
                sign_count=made.sign_count,
                device_type=made.device_type,
                backed_up=made.backed_up,
                name=(name.strip() or "Phone")[:MAX_NAME_LENGTH],
                now=now,
            )
        except IntegrityError:  # the same passkey sent twice at once
            raise Refused(409, "This passkey is already enrolled.") from None
        if push is not None:
            await self.store.set_subscription(stored.id, push.endpoint, push.p256dh, push.auth, now)
        return Enrolled(device, stored, grant.account)

    async def update_subscription(
        self, credential_id: Any, subscription: Any, phone_devices: tuple[int, ...]
    ) -> None:
        """A phone's new push subscription (browsers rotate them). Only the phone that holds
        the passkey's device may change where its pushes go."""
        credential, device = await self._active(credential_id)
        if device.id not in phone_devices:
            raise Refused(403, "This phone is not enrolled for that account.")
        try:
            push = parse_subscription(subscription, allow_insecure=self.allow_insecure_push)
        except BadSubscription as exc:
            raise Refused(400, str(exc)) from None
        await self.store.set_subscription(
            credential.id, push.endpoint, push.p256dh, push.auth, now_utc()
        )

    def _account_of(self, token: Any) -> str:
        if not isinstance(token, str):
            raise Refused(400, "The enrolment link is not valid.")
        try:
            return custom_user_id_from(token, self.emulator.settings)
        except errors.RegistrationRejected as exc:
            raise Refused(400, f"Could not add the account: {exc}.") from None

    # --- decisions -------------------------------------------------------------------

    async def decision_options(self, request_uuid: str, credential_id: str) -> dict[str, Any]:
        """A nonce for one answer to one request by one passkey, and what to sign with."""
        credential, _ = await self._active(credential_id)
        request = await self._pending(request_uuid, credential)
        now = now_utc()
        lifetime = DECISION_LIFETIME
        if request.expires_at is not None:
            lifetime = min(lifetime, request.expires_at - now)
        ceremony = await self.store.new_ceremony(
            "decide", lifetime, now, request_uuid=request.uuid, credential=credential.id
        )
        options = webauthn.authentication_options(
            self.rp,
            challenge=ceremony.challenge,  # the phone replaces it by SHA-256(record)
            allow=[webauthn.from_b64url(credential.credential_id)],
            require_user_verification=True,
        )
        return {
            "ceremony": ceremony.id,
            "request": request.uuid,
            "nonce": webauthn.b64url(ceremony.challenge),
            "exp": int(ceremony.expires_at.timestamp()),
            "needsNumber": needs_number(request),
            "publicKey": options,
        }

    async def decide(
        self,
        *,
        request_uuid: str,
        ceremony_id: str,
        decision: str,
        number: Any,
        assertion: Any,
        ip: str,
    ) -> str:
        """Check a signed answer and, if it counts, decide the request; the status."""
        if decision not in DECISIONS:
            raise Refused(400, "Choose approve, deny or report.")
        typed = None if number in (None, "") else str(number).strip()
        if typed is not None and not NUMBER.fullmatch(typed):
            raise Refused(400, "Type the number shown on the login screen.")
        now = now_utc()
        ceremony = await self.store.spend_ceremony(str(ceremony_id), "decide", now)
        if ceremony is None or ceremony.request_uuid != request_uuid:
            raise Refused(409, "This answer has expired or was already used.")
        assert ceremony.credential is not None
        credential = await self.store.credential(ceremony.credential)
        if credential is None:
            raise Refused(403, "This phone is no longer enrolled.")
        credential, device = await self._active(credential.credential_id)
        request = await self._pending(request_uuid, credential)
        if decision == "approve" and needs_number(request) and typed is None:
            raise Refused(400, "Type the number shown on the login screen.")
        record = canonical_record(
            request_id=request.uuid,
            decision=decision,
            number=typed if decision == "approve" else None,
            nonce=ceremony.challenge,
            expires_at=ceremony.expires_at,
        )
        await self._check_assertion(
            credential, assertion, record_challenge(record), now, "This answer was already used."
        )
        status: Literal["approved", "denied"] = "approved" if decision == "approve" else "denied"
        reason = typed if decision == "approve" else ("reported" if decision == "report" else None)
        try:
            decided = await self.emulator.decide(
                request.uuid, status, reason=reason, responder_ip=ip, phone_devices=(device.id,)
            )
        except errors.RequestNotPending:
            raise Refused(409, "That request was already answered or has expired.") from None
        except (errors.UnknownRequest, errors.NotYourRequest):
            raise Refused(404, "This phone has no such request.") from None
        self.emulator.send_callback_later(decided)
        return status

    # --- TOTP codes ------------------------------------------------------------------

    async def code_options(self, credential_id: Any) -> dict[str, Any]:
        """A nonce for one look at the TOTP code of this passkey's device."""
        credential, _ = await self._active(credential_id)
        ceremony = await self.store.new_ceremony(
            "code", CODE_LIFETIME, now_utc(), credential=credential.id
        )
        options = webauthn.authentication_options(
            self.rp,
            challenge=ceremony.challenge,
            allow=[webauthn.from_b64url(credential.credential_id)],
            require_user_verification=True,
        )
        return {"ceremony": ceremony.id, "publicKey": options}

    async def show_code(self, *, ceremony_id: str, assertion: Any) -> dict[str, Any]:
        """The 7-digit code the push service accepts for this device now, for a signed
        request (user verification, a server nonce used once) by a passkey still enrolled."""
        now = now_utc()
        ceremony = await self.store.spend_ceremony(str(ceremony_id), "code", now)
        if ceremony is None or ceremony.credential is None:
            raise Refused(409, "This request has expired or was already used.")
        stored = await self.store.credential(ceremony.credential)
        if stored is None:
            raise Refused(403, "This phone is no longer enrolled.")
        credential, device = await self._active(stored.credential_id)
        await self._check_assertion(
            credential, assertion, ceremony.challenge, now, "This request was already used."
        )
        moment = now.timestamp()
        return {
            "authy_id": device.authy_id,
            "code": totp.code_at(device.totp_secret, moment),
            "seconds_left": totp.seconds_left(moment),
        }

    async def _check_assertion(
        self,
        credential: Credential,
        assertion: Any,
        challenge: bytes,
        now: datetime,
        already_used: str,
    ) -> None:
        """The phone's passkey signed `challenge` with user verification, and this answer
        moves its sign count forward (once: a replayed assertion is refused)."""
        try:
            verified = webauthn.verify_assertion(
                self.rp,
                assertion,
                challenge=challenge,
                credential_id=webauthn.from_b64url(credential.credential_id),
                public_key=credential.public_key,
                sign_count=credential.sign_count,
                require_user_verification=True,
            )
        except webauthn.CeremonyRejected as exc:
            raise Refused(403, f"{exc}.") from None
        if not await self.store.advance_sign_count(
            credential.id, credential.sign_count, verified.new_sign_count, now
        ):
            raise Refused(409, already_used)

    async def _active(self, credential_id: Any) -> tuple[Credential, Device]:
        """The passkey and its device, if both still stand and belong together."""
        if not isinstance(credential_id, str) or not 0 < len(credential_id) <= 1400:
            raise Refused(400, "Which passkey?")
        credential = await self.store.credential_by_id(credential_id)
        if credential is None or not credential.active:
            raise Refused(403, "This phone is no longer enrolled.")
        device = await self.emulator.store.get_device(credential.device_id)
        if device is None or device.authy_id != credential.authy_id:
            raise Refused(403, "This phone is no longer enrolled.")
        return credential, device

    async def _pending(self, request_uuid: str, credential: Credential) -> ApprovalRequest:
        request = await self.emulator.store.get_request(request_uuid)
        if request is None or request.authy_id != credential.authy_id:
            raise Refused(404, "This phone has no such request.")
        if request.status_at(now_utc()) != "pending":
            raise Refused(409, "That request was already answered or has expired.")
        return request


def needs_number(request: ApprovalRequest) -> bool:
    """The login page shows a number when the app asked for number matching."""
    return bool(request.hidden_details.get("match_choices"))
