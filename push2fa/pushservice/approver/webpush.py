"""Web Push to the Approver: a wake-up hint, encrypted for the phone, signed with VAPID.

The browser vendor's push service (FCM, Mozilla, Apple) carries the message, so it carries
nothing that matters: only the request id. The phone fetches the request itself and signs
its answer; a stolen or replayed push approves nothing. Every send gets a fresh claims dict
(pywebpush writes ``aud`` and ``exp`` into it, so reusing one would sign for the first
push service's audience), a TTL equal to the request's remaining life, ``Urgency: high``
and an explicit timeout. The push service's answer says what to do with the subscription:
404/410 drop it, 429 waits for Retry-After, 403 and 413 keep it and are logged.
"""

from __future__ import annotations

import base64
import enum
import ipaddress
import json
import logging
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPushException, webpush_async

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
MAX_TTL = 600
MAX_ENDPOINT_LENGTH = 2048
DEFAULT_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 3600.0
VAPID_KEY_FILE = "vapid_private_key.pem"
_SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s/]+(/\S*)?)$")


class BadSubscription(ValueError):
    """A subscription the phone sent that push2fa will not post to."""


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # 201: the push service has it
    GONE = "gone"  # 404/410: the subscription is dead; drop it
    RETRY_LATER = "retry_later"  # 429: do not send to it before retry_after
    REJECTED = "rejected"  # 400/403/413/...: kept, logged as a configuration problem
    FAILED = "failed"  # no answer (timeout, refused) or a 5xx: try again next time


@dataclass(frozen=True)
class PushResult:
    outcome: Outcome
    status: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Subscription:
    """What ``PushSubscription.toJSON()`` gives: a capability URL and the phone's keys."""

    endpoint: str
    p256dh: str
    auth: str

    def as_info(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


def parse_subscription(data: Any, *, allow_insecure: bool = False) -> Subscription:
    """A subscription from the phone's JSON, checked before anything is stored or sent.

    Only https endpoints on a host name are accepted in production: the server will POST
    to this URL, so an endpoint inside the network would be a request forgery.
    ``allow_insecure`` (development and tests) admits http and local addresses.
    """
    if not isinstance(data, dict):
        raise BadSubscription("the subscription is not an object")
    endpoint, keys = data.get("endpoint"), data.get("keys")
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= MAX_ENDPOINT_LENGTH:
        raise BadSubscription("the subscription has no endpoint")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise BadSubscription("the endpoint is not a URL")
    if not allow_insecure and (parts.scheme != "https" or _is_local(parts.hostname)):
        raise BadSubscription("the endpoint must be an https URL of a public push service")
    if not isinstance(keys, dict):
        raise BadSubscription("the subscription has no keys")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if _b64url_length(p256dh) != 65 or _b64url_length(auth) != 16:
        raise BadSubscription("the subscription keys are malformed")
    return Subscription(endpoint, cast(str, p256dh), cast(str, auth))


@dataclass(frozen=True)
class VapidKey:
    """The server's VAPID identity: the private key and the subject push services see."""

    vapid: Vapid
    subject: str

    @property
    def application_server_key(self) -> str:
        """What the page passes to ``pushManager.subscribe`` (base64url, uncompressed)."""
        raw = self.vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def from_settings(
        cls, private_key: str, subject: str, *, instance_path: str, production: bool
    ) -> VapidKey:
        """Production takes the key from settings and a real subject; development makes a
        key once into the instance folder, so phones keep their subscriptions across
        restarts."""
        check_subject(subject, production=production)
        if private_key:
            try:
                return cls(Vapid.from_string(private_key), subject)
            except Exception as exc:  # py_vapid raises bare errors for a bad key
                raise ValueError("PUSH2FA_VAPID_PRIVATE_KEY is not a VAPID private key") from exc
        if production:
            raise ValueError("PUSH2FA_VAPID_PRIVATE_KEY is required in production")
        path = Path(instance_path) / VAPID_KEY_FILE
        if path.is_file():
            return cls(Vapid.from_file(str(path)), subject)
        vapid = Vapid()
        vapid.generate_keys()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(vapid.private_pem())
        path.chmod(0o600)
        return cls(vapid, subject)


def check_subject(subject: str, *, production: bool) -> None:
    """Apple refuses a VAPID ``sub`` on localhost or .local (403 BadJwtToken), so
    production needs a real ``mailto:`` or ``https:`` one."""
    if not _SUBJECT.match(subject):
        raise ValueError("the VAPID subject must be a mailto: address or an https: URL")
    host = (
        subject.split("@", 1)[-1] if subject.startswith("mailto:") else urlsplit(subject).hostname
    )
    host = (host or "").lower()
    if production and (host == "localhost" or host.endswith((".local", ".localhost"))):
        raise ValueError("the VAPID subject must name a real domain in production")


def wake_up_payload(request_id: str) -> str:
    """The whole push: which request to fetch. No number, no nonce, nothing that approves."""
    return json.dumps({"v": 1, "request": request_id}, separators=(",", ":"))


class WebPushSender:
    """Sends wake-up pushes over one aiohttp session, open while the service runs."""

    def __init__(self, key: VapidKey, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.key = key
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, subscription: Subscription, request_id: str, ttl: int) -> PushResult:
        if self._session is None:
            raise RuntimeError("WebPushSender.send() before open(): is lifespan running?")
        claims: dict[str, str | int] = {"sub": self.key.subject}  # fresh per send
        try:
            response = await webpush_async(
                subscription.as_info(),
                data=wake_up_payload(request_id),
                vapid_private_key=self.key.vapid,
                vapid_claims=claims,
                content_encoding="aes128gcm",
                ttl=max(0, min(int(ttl), MAX_TTL)),
                headers={"Urgency": "high"},
                timeout=cast(float, aiohttp.ClientTimeout(total=self.timeout)),
                aiohttp_session=self._session,
            )
        except WebPushException as exc:
            return self._refused(exc, subscription)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("web push to %s failed: %s", _host(subscription), type(exc).__name__)
            return PushResult(Outcome.FAILED)
        status = cast(aiohttp.ClientResponse, response).status
        return PushResult(Outcome.DELIVERED, status)

    def _refused(self, exc: WebPushException, subscription: Subscription) -> PushResult:
        response = exc.response
        status = getattr(response, "status", None) or getattr(response, "status_code", None)
        host = _host(subscription)
        if status in (404, 410):
            log.info("web push subscription at %s is gone (%s)", host, status)
            return PushResult(Outcome.GONE, status)
        if status == 429:
            headers = getattr(response, "headers", {}) or {}
            retry_after = retry_after_seconds(headers.get("Retry-After"))
            log.warning("web push to %s throttled for %.0f s", host, retry_after)
            return PushResult(Outcome.RETRY_LATER, status, retry_after)
        if status is not None and status >= 500:
            log.warning("web push to %s failed with %s", host, status)
            return PushResult(Outcome.FAILED, status)
        log.error("web push to %s refused with %s: check the VAPID key and subject", host, status)
        return PushResult(Outcome.REJECTED, status)


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float:
    """Retry-After as seconds (delta or HTTP date), bounded; a default when unreadable."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    seconds: float
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _host(subscription: Subscription) -> str:
    """The push service's host: what logs may say (the full endpoint is a capability)."""
    return urlsplit(subscription.endpoint).hostname or "?"


def _b64url_length(value: Any) -> int:
    if not isinstance(value, str) or len(value) > 200:
        return -1
    try:
        return len(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except ValueError:
        return -1


def _is_local(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True  # push services have names; an address literal is never one
