"""RFC 6238 time-based one-time passwords, as the Authy app shows them.

Authy uses HMAC-SHA1 with 30-second steps and 7 digits. The push service checks one step either
side of now, so a code typed just as it rolls over still works, and refuses a step at or
before the last accepted one so a code cannot be used twice.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct

DIGITS = 7
STEP_SECONDS = 30
WINDOW_STEPS = 1


def new_secret() -> bytes:
    return secrets.token_bytes(20)


def step_at(unix_time: float) -> int:
    return int(unix_time // STEP_SECONDS)


def seconds_left(unix_time: float) -> int:
    """Whole seconds until the code shown at ``unix_time`` changes (1..30)."""
    return STEP_SECONDS - int(unix_time) % STEP_SECONDS


def code_for_step(secret: bytes, step: int) -> str:
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def code_at(secret: bytes, unix_time: float) -> str:
    return code_for_step(secret, step_at(unix_time))


def matching_step(secret: bytes, token: str, unix_time: float) -> int | None:
    """The step whose code equals ``token`` within the window, or None."""
    now_step = step_at(unix_time)
    found = None
    for step in range(now_step - WINDOW_STEPS, now_step + WINDOW_STEPS + 1):
        # No early exit: every candidate is compared, in constant time.
        if hmac.compare_digest(code_for_step(secret, step), token):
            found = step
    return found
