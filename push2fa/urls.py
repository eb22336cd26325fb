"""Decisions about URLs that come from the outside: `next` targets and client addresses."""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_NEXT_LENGTH = 512


def safe_next(target: str | None, default: str = "/") -> str:
    """Return `target` only if it is a local path on this site, else `default`.

    Rejects anything a browser could read as another origin: schemes, hosts,
    protocol-relative `//x`, backslash tricks `/\\x`, control characters.
    """
    if not target or len(target) > MAX_NEXT_LENGTH:
        return default
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    if not target.startswith("/") or target.startswith(("//", "/\\")) or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
