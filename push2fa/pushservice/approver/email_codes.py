"""The Approver's second way in: an account the app created with ``users/new``.

Such an account has an e-mail, a phone number and no phone app: nobody ever scans a QR for
it. The person proves the e-mail the app registered instead. They type it in the Approver;
if any user has it, the push service mails a one-time code to the address as the app
registered it (a self-hosted service has no SMS or voice gateway, so the phone number
cannot be used); they type the code back and win a *claim*, which the ordinary enrolment
(passkey with user verification, Web Push) then spends to add a device to that existing
account.

- The answer to "send me a code" is the same whether or not the address has an account,
  and the work that differs (looking it up, storing a code, mailing) runs after the answer
  is sent. Nothing is mailed for an unknown address.
- A code is 8 random digits, lives ``minutes``, is kept only as an HMAC under the push
  service's secret, is compared in constant time, and dies after ``tries`` tries (each try
  is counted before it is compared, so parallel guesses cannot exceed the limit). Asking
  for a new code ends the address's earlier ones.
- A right code is exchanged, once, for a random claim (kept hashed); the claim enrols one
  phone for one account of that e-mail and is spent in the same transaction that adds the
  device. Phones racing one code get one claim; phones racing one claim add one device.
- Several users may share an e-mail (e.g. registered twice with different phone numbers):
  the person is shown them, by the end of their phone number, and picks the one this
  phone joins; each further account needs a new code.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from push2fa.pushservice.approver.rules import Grant, Refused, user_handle
from push2fa.pushservice.inputs import email_address
from push2fa.pushservice.service import Emulator, now_utc
from push2fa.pushservice.store import Device, User, email_key

log = logging.getLogger(__name__)

SendMail = Callable[[str, str, str], Awaitable[None]]
Spawn = Callable[[Coroutine[Any, Any, None]], None]

CODE_DIGITS = 8
MAX_CODE_INPUT = 32
MAX_CLAIM_LENGTH = 64
_CODE_INPUT = re.compile(r"[0-9 \-]+")

SENT_MESSAGE = (
    "If an app registered this e-mail address, a code is on its way to it. It works for "
    "{minutes} minutes. Codes come by e-mail only: this push service cannot send text "
    "messages or make calls."
)
WRONG_CODE = "That code is wrong or has expired. Check the e-mail, or ask for a new code."
CODE_TAKEN = "That code was just used on another phone. Ask for a new code."


@dataclass(frozen=True)
class Verified:
    """A right code, exchanged for a claim, and the accounts the claim can enrol."""

    claim: str
    accounts: list[dict[str, Any]]


def code_hash(secret: bytes, code_id: str, code: str) -> str:
    """What the store keeps of a code: useless without the push service's secret."""
    return hmac.new(secret, f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


def claim_hash(claim: str) -> str:
    return hashlib.sha256(claim.encode("utf-8", "replace")).hexdigest()


def typed_code(value: Any) -> str:
    """The digits of the code as typed (spaces and dashes allowed), or a 400."""
    if isinstance(value, str) and len(value) <= MAX_CODE_INPUT and _CODE_INPUT.fullmatch(value):
        digits = re.sub(r"[^0-9]", "", value)
        if len(digits) == CODE_DIGITS:
            return digits
    raise Refused(400, f"Type the {CODE_DIGITS}-digit code from the e-mail.")


def typed_email(value: Any) -> str:
    address = email_address(value.strip() if isinstance(value, str) else value)
    if address is None:
        raise Refused(400, "Type the e-mail address the app registered.")
    return address


def account_choice(user: User) -> dict[str, Any]:
    """How the person tells their accounts apart: the end of the phone number the app
    registered (shown only once they proved the e-mail) and when it was registered."""
    ending = (user.cellphone or "")[-2:]
    return {
        "id": user.authy_id,
        "phone": f"+{user.country_code} …{ending}" if ending else None,
        "created_at": user.created_at.isoformat(),
    }


class EmailCodes:
    """Codes e-mailed to the addresses of ``users/new`` users, and the claims they win."""

    def __init__(
        self,
        emulator: Emulator,
        send_mail: SendMail | None,
        spawn: Spawn,
        *,
        minutes: int,
        tries: int,
    ) -> None:
        self.emulator = emulator
        self.send_mail = send_mail
        self.spawn = spawn
        self.lifetime = timedelta(minutes=minutes)
        self.tries = tries
        self._secret = hmac.new(
            emulator.settings.secret_key.encode(), b"approver-email-code", hashlib.sha256
        ).digest()

    @property
    def available(self) -> bool:
        return self.send_mail is not None

    @property
    def sent_message(self) -> str:
        return SENT_MESSAGE.format(minutes=int(self.lifetime.total_seconds() // 60))

    def address_key(self, value: Any) -> str:
        """The rate limiter's key for an address, however it is typed; it reveals nothing
        and is the same whether or not anybody has the address."""
        text = value.strip() if isinstance(value, str) else ""
        key = email_key(text)[:254].encode("utf-8", "replace")
        return "address:" + hmac.new(self._secret, key, hashlib.sha256).hexdigest()[:32]

    def request_code(self, email: Any) -> str:
        """Start sending a code to a typed address; the answer, the same for every address."""
        if self.send_mail is None:
            raise Refused(503, "This push service cannot send e-mail.")
        self.spawn(self._send_code(typed_email(email)))
        return self.sent_message

    async def _send_code(self, address: str) -> None:
        """Mail a new code to every user of the address, or do nothing if none has it. Runs
        after the answer was sent; nothing here may tell the asker which case it was."""
        if self.send_mail is None:
            return
        key = email_key(address)
        users = await self.emulator.store.users_with_email(key)
        if not users:
            log.info("approver e-mail code: no user has the address; nothing sent")
            return
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        code_id = secrets.token_urlsafe(16)
        now = now_utc()
        await self.emulator.store.issue_email_code(
            code_id, key, code_hash(self._secret, code_id, code), now, now + self.lifetime
        )
        app_name = self.emulator.settings.app_name
        minutes = int(self.lifetime.total_seconds() // 60)
        body = (
            f"Your code to add the {app_name} Approver on a phone:\n\n"
            f"    {code[:4]} {code[4:]}\n\n"
            f"Type it in the Approver within {minutes} minutes. It works once.\n\n"
            "If you did not ask for it, ignore this mail: without the code nobody can add "
            "a phone to your account. Never give the code to anyone.\n"
        )
        for to in sorted({user.email for user in users if user.email}):
            await self.send_mail(to, f"{app_name} Approver code: {code[:4]} {code[4:]}", body)

    async def verify(self, email: Any, code: Any) -> Verified:
        """Try a typed code for a typed address; a right one becomes a claim, once."""
        key = email_key(typed_email(email))
        digits = typed_code(code)
        now = now_utc()
        store = self.emulator.store
        match = None
        for code_id, stored in await store.try_email_code(key, now, self.tries):
            if hmac.compare_digest(stored, code_hash(self._secret, code_id, digits)):
                match = code_id
        if match is None:
            raise Refused(400, WRONG_CODE)
        claim = secrets.token_urlsafe(32)
        if not await store.claim_email_code(match, claim_hash(claim), now):
            raise Refused(409, CODE_TAKEN)
        users = await store.users_with_email(key)
        if not users:  # removed by the app in the meantime
            raise Refused(400, WRONG_CODE)
        return Verified(claim, [account_choice(user) for user in users])

    async def grant(self, claim: Any, account: Any) -> Grant:
        """The grant of a live claim for one account of its e-mail (spent at enrolment)."""
        if not isinstance(claim, str) or not 0 < len(claim) <= MAX_CLAIM_LENGTH:
            raise Refused(400, "Ask for a code by e-mail first.")
        if isinstance(account, bool) or not isinstance(account, int | str):
            raise Refused(400, "Choose the account to add.")
        text = str(account)
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise Refused(400, "Choose the account to add.")
        authy_id = int(text)
        store = self.emulator.store
        hashed = claim_hash(claim)
        key = await store.email_of_claim(hashed, now_utc())
        user = await store.get_user(authy_id)
        if key is None or user is None or user.email is None or email_key(user.email) != key:
            raise Refused(409, "This e-mail code was already used or has expired. Ask again.")

        async def spend(ip: str) -> Device:
            device = await self.emulator.enrol_by_claim(hashed, authy_id, ip)
            self.spawn(self._announce(user))
            return device

        return Grant(
            account=user.email,
            user_handle=user_handle("push2fa-approver-account", str(authy_id)),
            spend=spend,
        )

    async def _announce(self, user: User) -> None:
        """Tell the address that a phone joined its account: a code that leaked is seen."""
        if self.send_mail is None or user.email is None:
            return
        app_name = self.emulator.settings.app_name
        body = (
            f"A phone was just added to your {app_name} account with a code sent to this "
            "address. It now receives your sign-in requests and shows your codes.\n\n"
            f"If that was not you, contact {app_name} at once: they can remove the phone.\n"
        )
        await self.send_mail(user.email, f"{app_name}: a phone was added to your account", body)
