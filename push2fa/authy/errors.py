"""The one exception callers of the Authy client handle.

Pages turn it into a clear message and the challenge flow decides from `retryable`
whether offering "try again" makes sense, so every failure (an Authy error body, an HTML
503, a timeout, a refused connection, a value rejected before sending) arrives in this
single shape. The API key is never part of it.
"""

from __future__ import annotations

__all__ = ["AuthyError", "is_retryable_status"]


def is_retryable_status(status: int | None) -> bool:
    """Transport failures (no status), rate limiting and server errors may pass on retry."""
    return status is None or status == 429 or status >= 500


class AuthyError(Exception):
    """Authy (or the emulator) refused or failed a request, or it could not be sent.

    `error_code` is Authy's string code such as "60001"; `status` is the HTTP status, or
    None when no response arrived or nothing was sent. `retryable` defaults from `status`,
    and callers that reject input before sending pass `retryable=False`.
    """

    message: str
    error_code: str | None
    status: int | None
    retryable: bool

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status
        self.retryable = is_retryable_status(status) if retryable is None else retryable

    def __str__(self) -> str:
        facts = []
        if self.status is not None:
            facts.append(f"HTTP {self.status}")
        if self.error_code is not None:
            facts.append(f"error {self.error_code}")
        return f"{self.message} ({', '.join(facts)})" if facts else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, error_code={self.error_code!r}, "
            f"status={self.status!r}, retryable={self.retryable!r})"
        )
