"""Errors of the emulator, in the exact shapes real Authy returns.

Authy clients parse error bodies field by field (``error_code`` as a *string*, ``errors`` as
an object that repeats the message), so every Authy-facing error is built here and nowhere
else. Domain errors (unknown request, not pending, ...) are separate classes so that the
Authy API, the control API and the phone page can each answer them in their own format.
"""

from __future__ import annotations

from typing import Any


class AuthyError(Exception):
    """An error answered with Authy's JSON error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: dict[str, str] | None = None,
        *,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = {"message": message} if errors is None else errors
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message": self.message,
            "success": False,
            "errors": self.errors,
            "error_code": self.code,
        }
        return {**body, **self.extra}


def invalid_api_key() -> AuthyError:
    return AuthyError(401, "60001", "Invalid API key")


def invalid_request(detail: str = "Invalid request") -> AuthyError:
    return AuthyError(400, "60002", detail)


def invalid_parameter(field: str, problem: str) -> AuthyError:
    message = f"{field} {problem}"
    return AuthyError(400, "60004", message, {field: problem, "message": message})


def user_not_found() -> AuthyError:
    return AuthyError(404, "60026", "User not found.")


def user_not_valid(field_errors: dict[str, str]) -> AuthyError:
    # Real Authy repeats each field error at the top level of the body.
    errors = {**field_errors, "message": "User was not valid"}
    return AuthyError(400, "60027", "User was not valid", errors, extra=field_errors)


def approval_request_not_found(uuid: str) -> AuthyError:
    return AuthyError(404, "60049", f"Approval request not found: {uuid}", {})


def onetouch_unregistered_user() -> AuthyError:
    return AuthyError(400, "60050", "User has no device with the Authy app registered.")


def token_invalid() -> AuthyError:
    return AuthyError(401, "60020", "Token is invalid", extra={"token": "is invalid"})


def token_reused() -> AuthyError:
    return AuthyError(401, "60019", "Token is reused", extra={"token": "is invalid"})


def channel_unavailable(channel: str) -> AuthyError:
    """SMS, voice and e-mail need a gateway a self-hosted service does not have. 403 is
    what Authy answers for a feature the account lacks; the code is the generic 60002,
    because Authy's code for this case is not public."""
    message = (
        f"{channel} is not available: this push service cannot deliver {channel.lower()}"
        " tokens. Use the app's push or TOTP code instead."
    )
    return AuthyError(403, "60002", message)


class EmulatorError(Exception):
    """A domain failure; each front end (Authy API, control API, phone) maps it itself."""


class UnknownUser(EmulatorError):
    pass


class UnknownRequest(EmulatorError):
    pass


class RequestNotPending(EmulatorError):
    pass


class NotYourRequest(EmulatorError):
    """The phone asked to decide a request sent to a device it does not hold."""


class RegistrationRejected(EmulatorError):
    """The registration token is malformed, expired, or not for this application."""


class DeviceMissing(EmulatorError):
    """The user exists but has no device with the app, so nothing can answer a push."""


class TokenRejected(EmulatorError):
    def __init__(self, *, reused: bool) -> None:
        super().__init__("token reused" if reused else "token invalid")
        self.reused = reused


class TokenAlreadyUsed(RegistrationRejected):
    """The registration token was spent already: each one enrols exactly one phone."""

    def __init__(self) -> None:
        super().__init__("this enrolment code has already been used; show a new one")


class ClaimRejected(RegistrationRejected):
    """The e-mail claim is unknown, spent, expired, or does not cover that account."""

    def __init__(self) -> None:
        super().__init__("this e-mail code was already used or has expired; ask for a new one")
