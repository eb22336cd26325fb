"""The phone page's identity: a signed cookie naming the devices this browser holds.

The phone page plays the Authy app, and the app's secret is the enrolled device; here that
is the list of device ids in an HttpOnly cookie signed with the push service's secret key. The
same cookie authorises the Socket.IO connection, and its random ``phone_id`` anchors the
CSRF token of the page's forms.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "push2fa_emulator_phone"
COOKIE_PATH = "/_emulator"
MAX_AGE_SECONDS = 30 * 24 * 3600
MAX_DEVICES = 20


@dataclass(frozen=True)
class PhoneSession:
    phone_id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    device_ids: tuple[int, ...] = ()

    def with_device(self, device_id: int) -> PhoneSession:
        if device_id in self.device_ids:
            return self
        kept = (*self.device_ids, device_id)[-MAX_DEVICES:]
        return PhoneSession(self.phone_id, kept)

    def without_devices(self, device_ids: set[int]) -> PhoneSession:
        return PhoneSession(self.phone_id, tuple(d for d in self.device_ids if d not in device_ids))


class PhoneCookies:
    """Signs, reads and checks the phone cookie and its CSRF token."""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="push2fa.emulator.phone")
        self._csrf_key = hashlib.sha256(b"push2fa.emulator.csrf|" + secret_key.encode()).digest()

    def dumps(self, session: PhoneSession) -> str:
        return self._serializer.dumps({"p": session.phone_id, "d": list(session.device_ids)})

    def loads(self, value: str | None) -> PhoneSession | None:
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        phone_id, device_ids = data.get("p"), data.get("d")
        if not isinstance(phone_id, str) or not isinstance(device_ids, list):
            return None
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in device_ids):
            return None
        return PhoneSession(phone_id, tuple(device_ids[:MAX_DEVICES]))

    def from_cookie_header(self, header: str | None) -> PhoneSession | None:
        """Read the session from a raw ``Cookie`` header (the Socket.IO handshake)."""
        # Split by hand: SimpleCookie gives up on the whole header at the first cookie it
        # dislikes, and the app's own cookies share this header when mounted in-process.
        for part in (header or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE_NAME:
                return self.loads(value.strip().strip('"'))
        return None

    def csrf_token(self, session: PhoneSession) -> str:
        mac = hmac.new(self._csrf_key, session.phone_id.encode(), hashlib.sha256)
        return mac.hexdigest()

    def csrf_ok(self, session: PhoneSession | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        given = token.encode("utf-8", "replace")
        return hmac.compare_digest(self.csrf_token(session).encode("ascii"), given)
