"""Live updates for the phone page over Socket.IO: new requests, decisions, expiry, codes.

Like the app's own realtime layer, the server decides the rooms: the connect handler reads
the signed phone cookie from the handshake and joins ``device:<authy_id>`` for each enrolled
account; a client never names a room. Handshakes from another origin are refused (an
explicit same-origin check: python-engineio's ``cors_allowed_origins=[]`` would switch the
check off, and its default ignores the scheme of a direct TLS connection); forwarding
headers count only as the trusted proxies resolved them into the scope. After a
(re)connect the page asks for ``sync`` and gets the current state, so nothing that happened
while it was away is lost. TOTP codes are pushed at each 30-second boundary: no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import socketio

from . import totp
from .payloads import iso, iso_or_none
from .phone_session import PhoneCookies
from .store import ApprovalRequest, Device, Store

log = logging.getLogger(__name__)

SOCKETIO_PATH = "/_emulator/socket.io"
MAX_CHOICES = 9
MAX_CHOICE_LENGTH = 8  # as the control API's "code"


def room_for(authy_id: int) -> str:
    return f"device:{authy_id}"


def match_choices(hidden_details: Mapping[str, str]) -> list[str]:
    """The numbers the phone offers for number matching, from the app's hidden
    ``match_choices`` ("17,42,83"). Anything but a short list of short numbers gives none,
    and the phone falls back to a plain Approve (which the app then refuses)."""
    raw = hidden_details.get("match_choices")
    if not isinstance(raw, str):
        return []
    choices = list(dict.fromkeys(part.strip() for part in raw.split(",")))
    if not 0 < len(choices) <= MAX_CHOICES:
        return []
    if not all(c.isascii() and c.isdigit() and len(c) <= MAX_CHOICE_LENGTH for c in choices):
        return []
    return choices


def request_card(request: ApprovalRequest) -> dict[str, Any]:
    """What the phone shows of a request: of its hidden details, only the numbers to
    pick from (the app's other hidden details, e.g. its challenge id, stay hidden)."""
    return {
        "uuid": request.uuid,
        "authy_id": request.authy_id,
        "message": request.message,
        "details": dict(request.details),
        "choices": match_choices(request.hidden_details),
        "created_at": iso(request.created_at),
        "expires_at": iso_or_none(request.expires_at),
    }


def totp_card(device: Device, unix_time: float) -> dict[str, Any]:
    return {
        "authy_id": device.authy_id,
        "code": totp.code_at(device.totp_secret, unix_time),
        "seconds_left": totp.seconds_left(unix_time),
    }


def same_origin(origin: str, environ: dict[str, Any]) -> bool:
    """Accept a browser handshake only from the page's own scheme and host."""
    parts = urlsplit(origin)
    # Host and scheme as the trusted proxies resolved them (the ASGI scope); a client's own
    # X-Forwarded-* headers are never read here.
    host = str(environ.get("HTTP_HOST", "")).lower()
    scheme = "https" if environ["asgi.scope"].get("scheme") in ("https", "wss") else "http"
    return bool(host) and parts.scheme == scheme and parts.netloc.lower() == host


class PhoneRealtime:
    """The push service's own Socket.IO server for the phone page (separate from the app's)."""

    def __init__(self, store: Store, cookies: PhoneCookies) -> None:
        self.sio = socketio.AsyncServer(
            async_mode="asgi", cors_allowed_origins=same_origin, logger=False
        )
        self._store = store
        self._cookies = cookies
        self._devices_of: dict[str, tuple[int, ...]] = {}
        self._ticker: asyncio.Task[None] | None = None
        # Told of each new request before the phones hear it (the Approver's Web Push).
        self.created_listeners: list[Callable[[ApprovalRequest], None]] = []
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("sync", self._on_sync)

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._push_codes_forever(), name="pushservice-totp")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def request_created(self, request: ApprovalRequest) -> None:
        for listener in self.created_listeners:
            listener(request)
        await self.sio.emit("new_request", request_card(request), room=room_for(request.authy_id))

    async def request_decided(self, request: ApprovalRequest) -> None:
        event = {"uuid": request.uuid, "status": request.status}
        await self.sio.emit("request_decided", event, room=room_for(request.authy_id))

    async def request_withdrawn(self, request: ApprovalRequest) -> None:
        """The app no longer wants an answer (cancelled, replaced, answered by a code)."""
        event = {"uuid": request.uuid, "status": "withdrawn"}
        await self.sio.emit("request_withdrawn", event, room=room_for(request.authy_id))

    async def request_expired(self, request: ApprovalRequest) -> None:
        event = {"uuid": request.uuid, "status": "expired"}
        await self.sio.emit("request_expired", event, room=room_for(request.authy_id))

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        session = self._cookies.from_cookie_header(environ.get("HTTP_COOKIE"))
        devices = await self._devices(() if session is None else session.device_ids)
        if not devices:
            raise socketio.exceptions.ConnectionRefusedError("no enrolled device")
        for authy_id in {d.authy_id for d in devices}:
            await self.sio.enter_room(sid, room_for(authy_id))
        self._devices_of[sid] = tuple(d.id for d in devices)

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._devices_of.pop(sid, None)

    async def _on_sync(self, sid: str, data: Any = None) -> dict[str, Any]:
        """Everything the page should show now: pending requests and current codes."""
        devices = await self._devices(self._devices_of.get(sid, ()))
        now = datetime.now(UTC)
        requests: list[ApprovalRequest] = []
        for authy_id in sorted({d.authy_id for d in devices}):
            requests += await self._store.pending_requests_for(authy_id, now)
        return {
            "requests": [request_card(r) for r in requests],
            "codes": [totp_card(d, now.timestamp()) for d in devices],
        }

    async def _devices(self, device_ids: tuple[int, ...]) -> list[Device]:
        found = [await self._store.get_device(device_id) for device_id in device_ids]
        return [device for device in found if device is not None]

    async def _push_codes_forever(self) -> None:
        while True:
            now = time.time()
            await asyncio.sleep(totp.STEP_SECONDS - now % totp.STEP_SECONDS + 0.05)
            try:
                await self._push_codes()
            except Exception:  # one failed round must not end the codes for good
                log.exception("pushing TOTP codes failed")

    async def _push_codes(self) -> None:
        now = time.time()
        for sid, device_ids in list(self._devices_of.items()):
            for device in await self._devices(device_ids):
                await self.sio.emit("totp", totp_card(device, now), to=sid)
