"""Errors the push service answers, in the exact shapes real Authy returns (the client's
side, what push2fa.authy.client raises, is push2fa.authy.errors.AuthyError).

Authy clients parse error bodies field by field (``error_code`` as a *string*, ``errors`` as
an object that repeats the message), so every Authy-facing error is built here and nowhere
else. Domain errors (unknown request, not pending, ...) are separate classes so that the
Authy API, the control API and the phone page can each answer them in their own format.
"""

from __future__ import annotations

from typing import Any


class AuthyErrorAnswer(Exception):
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


def invalid_api_key() -> AuthyErrorAnswer:
    return AuthyErrorAnswer(401, "60001", "Invalid API key")


def invalid_request(detail: str = "Invalid request") -> AuthyErrorAnswer:
    return AuthyErrorAnswer(400, "60002", detail)


def invalid_parameter(field: str, problem: str) -> AuthyErrorAnswer:
    message = f"{field} {problem}"
    return AuthyErrorAnswer(400, "60004", message, {field: problem, "message": message})


def user_not_found() -> AuthyErrorAnswer:
    return AuthyErrorAnswer(404, "60026", "User not found.")


def user_not_valid(field_errors: dict[str, str]) -> AuthyErrorAnswer:
    # Real Authy repeats each field error at the top level of the body.
    errors = {**field_errors, "message": "User was not valid"}
    return AuthyErrorAnswer(400, "60027", "User was not valid", errors, extra=field_errors)


def approval_request_not_found(uuid: str) -> AuthyErrorAnswer:
    return AuthyErrorAnswer(404, "60049", f"Approval request not found: {uuid}", {})


def onetouch_unregistered_user() -> AuthyErrorAnswer:
    return AuthyErrorAnswer(400, "60050", "User has no device with the Authy app registered.")


def token_invalid() -> AuthyErrorAnswer:
    return AuthyErrorAnswer(401, "60020", "Token is invalid", extra={"token": "is invalid"})


def token_reused() -> AuthyErrorAnswer:
    return AuthyErrorAnswer(401, "60019", "Token is reused", extra={"token": "is invalid"})


def channel_unavailable(channel: str) -> AuthyErrorAnswer:
    """SMS, voice and e-mail need a gateway a self-hosted service does not have. 403 is
    what Authy answers for a feature the account lacks; the code is the generic 60002,
    because Authy's code for this case is not public."""
    message = (
        f"{channel} is not available: this push service cannot deliver {channel.lower()}"
        " tokens. Use the app's push or TOTP code instead."
    )
    return AuthyErrorAnswer(403, "60002", message)


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
