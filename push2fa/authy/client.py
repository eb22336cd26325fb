"""AuthyClient: the only code in push2fa that talks to Authy.

The same client serves https://api.authy.com and the project's emulator, so it relies only
on what spec sections 1, 3 and 4 document: JSON bodies, the `X-Authy-API-Key` header,
string error codes, `success` that may be the string "true", and error bodies whose
Content-Type cannot be trusted. Every failure becomes an `AuthyError`; the API key never
appears in an error, a log line or a followed redirect.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from yarl import URL

from push2fa.authy.errors import AuthyError

__all__ = [
    "ApprovalRequestStatus",
    "AuthyClient",
    "PhoneDevice",
    "PollBudget",
    "RegistrationStatus",
]

log = logging.getLogger(__name__)

MESSAGE_MAX_LENGTH = 200
DETAIL_KEY_MAX_LENGTH = 20  # Authy's docs: "Max 20 characters for the Key"
DETAIL_MAX_LENGTH = 200
LOGO_URL_MAX_LENGTH = 500
LOGO_RESOLUTIONS = frozenset({"default", "low", "med", "high"})
_INVALID_TOKEN_CODES = frozenset({"60019", "60020"})  # reused, invalid
_TOKEN = re.compile(r"[0-9]{6,12}")
_MAX_RESPONSE_BYTES = 1024 * 1024
_REDACTED = "[redacted]"
_ERROR_CODE = re.compile(r"[0-9A-Za-z_.-]{1,32}")


def _user_agent() -> str:
    try:
        version = metadata.version("push2fa")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"push2fa/{version}"


@dataclass(frozen=True)
class ApprovalRequestStatus:
    """Where a OneTouch request stands; `raw` is Authy's whole `approval_request` object."""

    uuid: str
    status: str
    raw: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class RegistrationStatus:
    """Progress of an app-based (QR) registration; `authy_id` is set once completed."""

    status: str
    authy_id: int | None

    @property
    def completed(self) -> bool:
        return self.status == "completed" and self.authy_id is not None


def _moment(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class PhoneDevice:
    """A phone on a user's account at push2fa's own push service."""

    id: int
    name: str
    kind: str  # synced | device-bound | no-passkey
    registered_at: datetime
    last_used_at: datetime | None
    last_push_delivered_at: datetime | None

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> PhoneDevice:
        registered = _moment(row["registered_at"])
        if registered is None or type(row["id"]) is not int:
            raise ValueError("device without id or registration time")
        return cls(
            id=row["id"],
            name=str(row["name"])[:80],
            kind=str(row["kind"])[:20],
            registered_at=registered,
            last_used_at=_moment(row.get("last_used_at")),
            last_push_delivered_at=_moment(row.get("last_push_delivered_at")),
        )


def _rejected(message: str) -> AuthyError:
    """An error for input refused before anything was sent: retrying cannot help."""
    return AuthyError(message, retryable=False)


def _invalid_response(message: str, status: int) -> AuthyError:
    return AuthyError(f"Authy sent an unexpected response: {message}", status=status)


def _is_false(value: Any) -> bool:
    return value is False or value == "false"


def _check_authy_id(authy_id: int) -> int:
    if type(authy_id) is not int or authy_id <= 0:
        raise _rejected("authy_id must be a positive integer")
    return authy_id


def _check_text_map(
    name: str, values: Mapping[str, str] | None, key_max: int
) -> dict[str, str] | None:
    """Refuse before sending what the API refuses: long keys, and keys a GET callback
    could not carry back (brackets, or only digits, which read as array indices)."""
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise _rejected(f"{name} must be a mapping of strings to strings")
    checked: dict[str, str] = {}
    for key, value in values.items():
        if not (isinstance(key, str) and isinstance(value, str)) or not key:
            raise _rejected(f"{name} must map non-empty strings to strings")
        if len(key) > key_max or len(value) > DETAIL_MAX_LENGTH:
            raise _rejected(
                f"{name} keys are limited to {key_max} characters and values to {DETAIL_MAX_LENGTH}"
            )
        if "[" in key or "]" in key or key.isdigit():
            raise _rejected(f"{name} keys must not contain brackets or be only digits")
        checked[key] = value
    return checked


def _check_logos(logos: Sequence[Mapping[str, str]] | None) -> list[dict[str, str]] | None:
    if logos is None:
        return None
    checked: list[dict[str, str]] = []
    for logo in logos:
        if not isinstance(logo, Mapping):
            raise _rejected("each logo must be a mapping with res and url")
        res, url = logo.get("res"), logo.get("url")
        if res not in LOGO_RESOLUTIONS or not isinstance(url, str) or not url:
            raise _rejected("each logo needs res (default, low, med or high) and a url")
        if len(url) > LOGO_URL_MAX_LENGTH:
            raise _rejected(f"logo urls are limited to {LOGO_URL_MAX_LENGTH} characters")
        checked.append({"res": res, "url": url})
    if checked and not any(logo["res"] == "default" for logo in checked):
        raise _rejected("logos must include a 'default' resolution")
    if len({logo["res"] for logo in checked}) != len(checked):
        raise _rejected("logos may give each resolution only once")
    return checked


def _path_segment(value: str, what: str) -> str:
    """Quote a caller-supplied value for use as one path segment, refusing dot segments."""
    if not isinstance(value, str) or value in {"", ".", ".."}:
        raise _rejected(f"{what} is missing or invalid")
    return quote(value, safe="")


# While verified callbacks keep arriving the webhook path demonstrably works: the
# safety-net poll stays silent for this long after the last one.
CALLBACKS_QUIET_SECONDS = 30.0


class PollBudget:
    """How many status polls the safety net may send now: a token bucket refilled at
    `per_second` (at most one second's worth banked), empty while callbacks arrive.
    A vendor API rate-limits per account, so this caps the total, not per challenge."""

    def __init__(self, per_second: float, clock: Any = time.monotonic) -> None:
        if not per_second > 0:
            raise ValueError("per_second must be positive")
        self.per_second = float(per_second)
        self._clock = clock
        self._tokens = 0.0
        self._updated = clock()
        self._last_callback: float | None = None

    def callback_arrived(self) -> None:
        """A verified callback came in: polling is pointless for a while."""
        self._last_callback = self._clock()

    def callbacks_arriving(self) -> bool:
        last = self._last_callback
        return last is not None and self._clock() - last < CALLBACKS_QUIET_SECONDS

    def available(self) -> int:
        """Whole polls that may be sent now (0 while callbacks arrive)."""
        now = self._clock()
        capacity = max(1.0, self.per_second)
        self._tokens = min(capacity, self._tokens + (now - self._updated) * self.per_second)
        self._updated = now
        return 0 if self.callbacks_arriving() else int(self._tokens)

    def spend(self, polls: int) -> None:
        self._tokens = max(0.0, self._tokens - polls)


class AuthyClient:
    """Async client for the Authy REST API (OneTouch, users, registrations, tokens).

    It borrows the application's `aiohttp.ClientSession` (one per app, closed by the app)
    and sets an explicit timeout on every request, so a slow Authy can never hold a login
    page open longer than `timeout` seconds.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 10.0,
        polls_per_second: float = 5.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("Authy base URL must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("Authy base URL must not have a query or fragment")
        if not api_key or not all("!" <= char <= "~" for char in api_key):
            raise ValueError("Authy API key must be non-empty printable ASCII without spaces")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._session = session
        self._timeout_seconds = float(timeout)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.poll_budget = PollBudget(polls_per_second)
        self._headers = {
            "X-Authy-API-Key": api_key,
            "User-Agent": _user_agent(),
            "Accept": "application/json",
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base_url!r})"

    # --- OneTouch -----------------------------------------------------------------------

    async def create_approval_request(
        self,
        authy_id: int,
        message: str,
        *,
        details: Mapping[str, str] | None = None,
        hidden_details: Mapping[str, str] | None = None,
        seconds_to_expire: int | None = None,
        logos: Sequence[Mapping[str, str]] | None = None,
    ) -> str:
        """Send a OneTouch push to the user's phone and return the approval request uuid.

        The message is cut to 200 characters, as the official Python client does, rather
        than failing a login over a long label. Omitting `seconds_to_expire` leaves Authy's
        default (one day); 0 means never.
        """
        _check_authy_id(authy_id)
        if not isinstance(message, str) or not message.strip():
            raise _rejected("the approval request message must not be empty")
        body: dict[str, Any] = {"message": message[:MESSAGE_MAX_LENGTH]}
        for name, values, key_max in (
            ("details", details, DETAIL_KEY_MAX_LENGTH),
            ("hidden_details", hidden_details, DETAIL_MAX_LENGTH),
        ):
            checked = _check_text_map(name, values, key_max)
            if checked is not None:
                body[name] = checked
        if seconds_to_expire is not None:
            if type(seconds_to_expire) is not int or seconds_to_expire < 0:
                raise _rejected("seconds_to_expire must be a non-negative integer")
            body["seconds_to_expire"] = seconds_to_expire
        checked_logos = _check_logos(logos)
        if checked_logos:
            body["logos"] = checked_logos
        data, status = await self._request(
            "POST",
            f"/onetouch/json/users/{authy_id}/approval_requests",
            "/onetouch/json/users/{authy_id}/approval_requests",
            json_body=body,
        )
        approval = data.get("approval_request")
        uuid = approval.get("uuid") if isinstance(approval, dict) else None
        if not isinstance(uuid, str) or not uuid:
            raise _invalid_response("no approval request uuid", status)
        return uuid

    async def approval_request_status(self, uuid: str) -> ApprovalRequestStatus:
        """Ask where an approval request stands: the fallback when no callback arrived."""
        segment = _path_segment(uuid, "approval request uuid")
        data, status = await self._request(
            "GET",
            f"/onetouch/json/approval_requests/{segment}",
            "/onetouch/json/approval_requests/{uuid}",
        )
        approval = data.get("approval_request")
        if not isinstance(approval, dict) or not isinstance(approval.get("status"), str):
            raise _invalid_response("no approval request status", status)
        reported_uuid = approval.get("uuid")
        return ApprovalRequestStatus(
            uuid=reported_uuid if isinstance(reported_uuid, str) and reported_uuid else uuid,
            status=approval["status"],
            raw=approval,
        )

    async def withdraw_approval_request(self, uuid: str) -> bool:
        """Take a request the app no longer wants off the phone; True if it was pending.

        A push2fa extension: only push2fa's own push service has this call (real Authy
        has none), so the app makes it only when it talks to that service."""
        segment = _path_segment(uuid, "approval request uuid")
        data, _ = await self._request(
            "POST",
            f"/onetouch/json/approval_requests/{segment}/withdraw",
            "/onetouch/json/approval_requests/{uuid}/withdraw",
        )
        return data.get("withdrawn") is True

    # --- app-based registration ---------------------------------------------------------

    async def registration_status(self, custom_user_id: str) -> RegistrationStatus:
        """Poll a QR registration; any status besides pending/completed means start over."""
        if not isinstance(custom_user_id, str) or not custom_user_id:
            raise _rejected("custom_user_id must be a non-empty string")
        data, status = await self._request(
            "GET",
            "/protected/json/registrations/status",
            "/protected/json/registrations/status",
            query={"custom_user_id": custom_user_id},
        )
        registration = data.get("registration")
        if not isinstance(registration, dict) or not isinstance(registration.get("status"), str):
            raise _invalid_response("no registration status", status)
        return RegistrationStatus(
            status=registration["status"], authy_id=_as_authy_id(registration.get("authy_id"))
        )

    # --- users --------------------------------------------------------------------------

    async def delete_user(self, authy_id: int) -> bool:
        """Remove a user from the Authy application (the official Python client's path).

        Returns False when Authy answers HTTP 200 with ``"success": false``: the official
        clients judge a call by its HTTP status alone (python ``User.ok()``, ruby ``ok?``),
        so that answer is not an error, but the caller may want to know the user stayed.
        """
        _check_authy_id(authy_id)
        data, _ = await self._request(
            "POST",
            f"/protected/json/users/{authy_id}/delete",
            "/protected/json/users/{authy_id}/delete",
            json_body={},
            accept_unsuccessful=True,
        )
        if _is_false(data.get("success")):
            message = data.get("message")
            shown = self._redact(message) if isinstance(message, str) else "-"
            log.warning("authy delete_user: HTTP 200 with success=false (%s)", shown)
            return False
        return True

    # --- push2fa extensions (push2fa's own push service only) -----------------------

    async def list_devices(self, authy_id: int) -> list[PhoneDevice]:
        """The user's phones, oldest first (not in Authy's API)."""
        _check_authy_id(authy_id)
        data, status = await self._request(
            "GET",
            f"/protected/json/users/{authy_id}/devices",
            "/protected/json/users/{authy_id}/devices",
        )
        rows = data.get("devices")
        if not isinstance(rows, list):
            raise _invalid_response("no device list", status)
        try:
            return [PhoneDevice.from_json(row) for row in rows]
        except (KeyError, TypeError, ValueError):
            raise _invalid_response("malformed device list", status) from None

    async def remove_device(self, authy_id: int, device_id: int) -> None:
        """Remove one of the user's phones at once (not in Authy's API); AuthyError with
        status 404 when the user has no such phone."""
        _check_authy_id(authy_id)
        _check_authy_id(device_id)
        await self._request(
            "POST",
            f"/protected/json/users/{authy_id}/devices/{device_id}/remove",
            "/protected/json/users/{authy_id}/devices/{device_id}/remove",
            json_body={},
        )

    async def test_push(self, authy_id: int, device_id: int) -> str:
        """Send one of the user's phones a test notification (not in Authy's API); returns
        the push outcome: delivered, gone, retry_later, rejected, failed, no-subscription."""
        _check_authy_id(authy_id)
        _check_authy_id(device_id)
        data, status = await self._request(
            "POST",
            f"/protected/json/users/{authy_id}/devices/{device_id}/test_push",
            "/protected/json/users/{authy_id}/devices/{device_id}/test_push",
            json_body={},
        )
        outcome = data.get("push")
        if not isinstance(outcome, str):
            raise _invalid_response("no push outcome", status)
        return outcome

    async def verify_token(self, authy_id: int, token: str) -> bool:
        """Check a TOTP token: False for a wrong or reused one, AuthyError for anything else.

        The token is checked for 6-12 ASCII digits before sending, as the official clients
        do, so a typo never costs a request. `force=true` checks even before registration
        completes.
        """
        _check_authy_id(authy_id)
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise _rejected("the token must be 6 to 12 digits")
        try:
            data, status = await self._request(
                "GET",
                f"/protected/json/verify/{token}/{authy_id}",
                "/protected/json/verify/{token}/{authy_id}",
                query={"force": "true"},
            )
        except AuthyError as error:
            if error.error_code in _INVALID_TOKEN_CODES:
                return False
            if error.status == 401 and error.error_code is None:
                # A 401 that names no code is a refused token to the official clients
                # (python ``Token.ok()`` needs a 200): refuse the login, do not fail it.
                return False
            raise
        if data.get("token") != "is valid":
            raise _invalid_response("token verification without 'is valid'", status)
        return True

    # --- transport ----------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        route: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        accept_unsuccessful: bool = False,
    ) -> tuple[dict[str, Any], int]:
        """Send one request and return the decoded success body and HTTP status.

        With `accept_unsuccessful`, a 2xx JSON body whose `success` is false is returned
        rather than raised, for the calls whose callers decide what it means.

        `path` must already be percent-encoded; `route` is its template, the only form that
        is logged (paths can carry a TOTP token). Redirects are not followed, so the API key
        header is never replayed to another host.
        """
        url = self._base_url + path
        if query:
            url += "?" + urlencode(query)
        started = time.monotonic()
        try:
            async with self._session.request(
                method,
                URL(url, encoded=True),
                json=json_body,
                headers=self._headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                raw = await self._read_limited(response)
        except TimeoutError:
            self._log(method, route, None, None, started)
            raise AuthyError(
                f"Authy did not answer within {self._timeout_seconds:g} s", retryable=True
            ) from None
        except aiohttp.ClientError as exc:
            self._log(method, route, None, None, started)
            raise AuthyError(
                f"could not reach Authy ({type(exc).__name__})", retryable=True
            ) from None
        try:
            data = self._parse_response(status, raw, accept_unsuccessful)
        except AuthyError as error:
            self._log(method, route, status, error.error_code, started)
            raise
        self._log(method, route, status, None, started)
        return data, status

    async def _read_limited(self, response: aiohttp.ClientResponse) -> bytes:
        body = bytearray()
        async for chunk in response.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > _MAX_RESPONSE_BYTES:
                raise AuthyError("Authy's response was too large", status=response.status)
        return bytes(body)

    def _parse_response(
        self, status: int, raw: bytes, accept_unsuccessful: bool = False
    ) -> dict[str, Any]:
        """Return the JSON object of a successful response; raise AuthyError otherwise."""
        data = _decode_json(raw)
        if 200 <= status < 300:
            if data is None:
                raise _invalid_response("the body is not a JSON object", status)
            if accept_unsuccessful or not _is_false(data.get("success")):
                return data
        if 300 <= status < 400:
            raise AuthyError(f"Authy answered with a redirect (HTTP {status})", status=status)
        if data is None:
            raise AuthyError(
                f"Authy failed with a non-JSON response (HTTP {status})", status=status
            )
        message = data.get("message")
        if not isinstance(message, str) or not message:
            message = f"Authy request failed (HTTP {status})"
        raise AuthyError(self._redact(message), error_code=self._error_code(data), status=status)

    def _error_code(self, data: Mapping[str, Any]) -> str | None:
        """Authy's code as a string ("60001"); anything odd-looking is dropped, not logged."""
        code = data.get("error_code")
        if isinstance(code, bool) or not isinstance(code, str | int):
            return None
        text = str(code)
        if self._api_key in text or not _ERROR_CODE.fullmatch(text):
            return None
        return text

    def _redact(self, text: str) -> str:
        """Remove the API key from text Authy (or something posing as it) sent back."""
        text = text.replace(self._api_key, _REDACTED)
        return text if len(text) <= 300 else text[:297] + "..."

    def _log(
        self, method: str, route: str, status: int | None, code: str | None, started: float
    ) -> None:
        elapsed_ms = (time.monotonic() - started) * 1000
        ok = status is not None and 200 <= status < 300 and code is None
        log.log(
            logging.DEBUG if ok else logging.WARNING,
            "authy %s %s -> %s error_code=%s in %.0f ms",
            method,
            route,
            status if status is not None else "no response",
            code,
            elapsed_ms,
        )


def _decode_json(raw: bytes) -> dict[str, Any] | None:
    """Decode a body as a JSON object whatever its Content-Type said; None if it is not one."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _as_authy_id(value: Any) -> int | None:
    """Authy ids are integers, but some sources send them as digit strings."""
    if type(value) is int and value > 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and int(value) > 0:
        return int(value)
    return None
