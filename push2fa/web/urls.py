"""Decisions about URLs that come from the outside: `next` targets and client addresses."""

from __future__ import annotations

import ipaddress
from typing import Any
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


# --- the client's address ---------------------------------------------------------------

MAX_FORWARDED_ENTRIES = 64
SCHEMES = {"http", "https"}


def parse_address(value: str) -> str | None:
    """`value` as a normalised IP address, or None if it is not one. Accepts the forms
    proxies write: `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]` and `[::1]:5678`."""
    text = value.strip()
    if not text or len(text) > 64 or "%" in text:  # no IPv6 zone ids: local to the proxy
        return None
    if text.startswith("["):
        host, bracket, _ = text[1:].partition("]")
        text = host if bracket else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: list[str], trusted_proxies: int) -> str:
    """The client's address as far as it can be trusted.

    With no trusted proxy it is the socket peer, whatever the client writes in
    X-Forwarded-For. Behind `trusted_proxies` proxies, each appends the address it saw to
    the header, so the client is the entry that many places from the right; entries to
    its left were written by the client and mean nothing. A header that is malformed or
    too short falls back to the peer (the nearest proxy), never to the client's words."""
    fallback = parse_address(peer or "") or (peer or "")[:64]
    if trusted_proxies <= 0:
        return fallback
    entries: list[str] = []
    for header in forwarded_for:
        entries.extend(header.split(","))
        if len(entries) > MAX_FORWARDED_ENTRIES:
            entries = entries[-MAX_FORWARDED_ENTRIES:]
    if len(entries) < trusted_proxies:
        return fallback
    return parse_address(entries[-trusted_proxies]) or fallback


class TrustedProxies:
    """ASGI middleware: the client address and scheme from trusted proxy hops only.

    Everything downstream (per-IP limits, audit, the details the phone shows, Socket.IO)
    reads `scope["client"]`, so deciding it once here keeps them all in step."""

    def __init__(self, app: Any, trusted_proxies: int) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in {"http", "websocket"} and self.trusted_proxies > 0:
            scope = dict(scope)
            forwarded: list[str] = []
            protos: list[str] = []
            for name, value in scope.get("headers", []):
                lowered = name.lower()
                if lowered == b"x-forwarded-for":
                    forwarded.append(value.decode("latin-1"))
                elif lowered == b"x-forwarded-proto":
                    protos.extend(value.decode("latin-1").split(","))
            peer = scope.get("client")
            address = client_address(peer[0] if peer else None, forwarded, self.trusted_proxies)
            scope["client"] = (address, peer[1] if peer else 0)
            if len(protos) >= self.trusted_proxies:
                proto = protos[-self.trusted_proxies].strip().lower()
                if proto in SCHEMES:
                    scope["scheme"] = proto if scope["type"] == "http" else _ws(proto)
        await self.app(scope, receive, send)


def _ws(proto: str) -> str:
    return "wss" if proto == "https" else "ws"
