"""The devices of an account, for the app's security page (push2fa extensions to the Authy
API, see docs/authy-compatibility.md): list them, remove one, send one a test push.

Removing takes effect at once: the device's passkey is revoked (no decision of it verifies
again), its push subscription is dropped, the device row is deleted, and when it was the
account's last phone its pending requests are withdrawn, so nothing waits on a phone that
is gone.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from quart import current_app

from .errors import AuthyErrorAnswer, RequestNotPending
from .service import Emulator, now_utc

log = logging.getLogger(__name__)


def device_not_found() -> AuthyErrorAnswer:
    return AuthyErrorAnswer(404, "60002", "Device not found.")


def _approver() -> Any | None:
    """The Approver, when this push service runs one (it is off on IP-address sites)."""
    from .approver.service import EXTENSION_KEY

    return current_app.extensions.get(EXTENSION_KEY)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


async def list_devices(emulator: Emulator, authy_id: int) -> list[dict[str, Any]]:
    approver = _approver()
    details = {} if approver is None else await approver.store.device_details(authy_id)
    listed = []
    for device in await emulator.store.devices_for(authy_id):
        credential, delivered = details.get(device.id, (None, None))
        if credential is None:
            kind, name, last_used = "no-passkey", "Development phone", None
        else:
            kind = "synced" if credential.backed_up else "device-bound"
            name, last_used = credential.name, credential.last_used_at
        listed.append(
            {
                "id": device.id,
                "name": name,
                "kind": kind,
                "registered_at": _iso(device.registered_at),
                "last_used_at": _iso(last_used),
                "last_push_delivered_at": _iso(delivered),
            }
        )
    return listed


async def remove_device(emulator: Emulator, authy_id: int, device_id: int) -> None:
    device = await emulator.store.get_device(device_id)
    if device is None or device.authy_id != authy_id:
        raise device_not_found()
    approver = _approver()
    if approver is not None:
        await approver.store.revoke_device(device_id, now_utc())
    if not await emulator.store.remove_device(authy_id, device_id):
        raise device_not_found()  # removed by a parallel call
    if await emulator.store.devices_for(authy_id):
        return
    for request in await emulator.store.pending_requests_for(authy_id, now_utc()):
        with contextlib.suppress(RequestNotPending):  # answered or expired meanwhile
            await emulator.withdraw(request.uuid)


async def test_push(emulator: Emulator, authy_id: int, device_id: int) -> str:
    """Send the device a test push; returns how the push service answered."""
    device = await emulator.store.get_device(device_id)
    if device is None or device.authy_id != authy_id:
        raise device_not_found()
    approver = _approver()
    if approver is None:
        return "no-subscription"
    subscription = await approver.store.subscription_of_device(device_id)
    if subscription is None:
        return "no-subscription"
    outcome = await approver.delivery.test_push(subscription)
    return str(outcome.value)
