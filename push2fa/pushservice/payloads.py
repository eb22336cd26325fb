"""The JSON bodies the push service answers with and sends, shaped like captured Authy traffic.

App code written against these bodies must also work against real Authy, so field names,
types and nullability follow the captures in the protocol reference (spec 1.3, 2.2, 3.2,
3.5): ISO-8601 ``Z`` times in status responses, Unix integers in callbacks, no floats, no
strings that start with "None", and no ``~`` or ``*`` in the values the push service invents.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import UTC, datetime
from io import BytesIO
from typing import Any
from urllib.parse import quote, urlencode

import qrcode
import qrcode.image.svg

from . import totp
from .settings import EmulatorSettings
from .store import TEST_CALLBACK_AUTHY_ID, ApprovalRequest, Device, User, new_request_uuid


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso(moment)


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


_OBJECT_ID = re.compile(r"[0-9a-f]{24}")


def _digest(settings: EmulatorSettings, purpose: bytes) -> bytes:
    return hashlib.sha256(purpose + b"|" + settings.app_id.encode("utf-8")).digest()


def app_serial_id(settings: EmulatorSettings) -> int:
    """``_app_serial_id``: the console's numeric application id, an int as java and Go read
    it. A non-numeric configured id gets a stable number derived from it."""
    app_id = settings.app_id
    if app_id.isascii() and app_id.isdigit() and len(app_id) <= 18:
        return int(app_id)
    return 10_000 + int.from_bytes(_digest(settings, b"serial")[:4], "big") % 90_000


def app_object_id(settings: EmulatorSettings) -> str:
    """``app_id`` of statuses and callbacks: real Authy sends a 24-hex object id here
    (``"58547f6f4014250a11c201f6"``), never the console's number, so one is derived."""
    if _OBJECT_ID.fullmatch(settings.app_id):
        return settings.app_id
    return _digest(settings, b"object")[:12].hex()


def customer_uuid(settings: EmulatorSettings) -> int:
    """A stable stand-in for the Authy account number, derived from the application."""
    digest = hashlib.sha256(settings.app_id.encode("utf-8")).digest()
    return 10_000 + int.from_bytes(digest[:4], "big") % 90_000


def masked_phone(cellphone: str | None) -> str | None:
    return None if cellphone is None else "XXX-XXX-" + cellphone[-4:]


def device_payload(device: Device, *, ip: str | None, now: datetime) -> dict[str, Any]:
    """The ``device`` object of callbacks, statuses and token checks (spec 2.2)."""
    return {
        "city": None,
        "country": None,
        "ip": ip,
        "region": None,
        "registration_city": None,
        "registration_country": None,
        "registration_ip": device.registration_ip,
        "registration_method": "qr",
        "registration_region": None,
        "os_type": device.os_type,
        "last_account_recovery_at": None,
        "id": device.id,
        "registration_date": unix(device.registered_at),
        "last_sync_date": unix(now),
    }


def user_status(user: User, devices: list[Device]) -> dict[str, Any]:
    """Spec 3.2. ``registered`` (has the app) is what apps test; app-only users have no
    phone, so their phone fields are null."""
    return {
        "status": {
            "authy_id": user.authy_id,
            "confirmed": bool(devices),
            "registered": bool(devices),
            "account_disabled": False,
            "has_hard_token": False,
            "country_code": user.country_code,
            "phone_number": masked_phone(user.cellphone),
            "devices": [d.os_type for d in devices],
        },
        "message": "User status.",
        "success": True,
    }


def approval_status(
    settings: EmulatorSettings,
    request: ApprovalRequest,
    user: User | None,
    device: Device | None,
    now: datetime,
) -> dict[str, Any]:
    """Spec 1.3, with ``expired`` worked out at read time."""
    body: dict[str, Any] = {
        "_app_name": settings.app_name,
        "_app_serial_id": app_serial_id(settings),
        "_authy_id": request.authy_id,
        "_id": request.object_id,
        "_user_email": None if user is None else user.email,
        "app_id": app_object_id(settings),
        "created_at": iso(request.created_at),
        "hidden_details": dict(request.hidden_details),
        "notified": False,
        "processed_at": iso_or_none(request.processed_at),
        "seconds_to_expire": request.seconds_to_expire,
        "status": request.status_at(now),
        "updated_at": iso(request.updated_at),
        "user_id": None if user is None else user.object_id,
        "uuid": request.uuid,
    }
    if device is not None and request.processed_at is not None:
        body["device"] = device_payload(device, ip=request.responder_ip, now=request.processed_at)
        body["reason"] = request.reason or ""
    return {"approval_request": body, "success": True}


def random_device_signature() -> str:
    """Stands in for the phone's RSA-2048 signature over the transaction (344 base64 chars)."""
    return base64.b64encode(secrets.token_bytes(256)).decode("ascii")


def approval_callback(
    settings: EmulatorSettings,
    request: ApprovalRequest,
    device: Device,
    now: datetime,
) -> dict[str, Any]:
    """The OneTouch callback body of spec 2.2 for an answered request."""
    created = unix(request.created_at)
    expires = None if request.seconds_to_expire == 0 else created + request.seconds_to_expire
    status = request.status
    return {
        "authy_id": request.authy_id,
        "device_uuid": device.id,
        "callback_action": "approval_request_status",
        "uuid": request.uuid,
        "status": status,
        "signature": random_device_signature(),
        "approval_request": {
            "app_id": app_object_id(settings),
            "expiration_timestamp": expires,
            "logos": None if request.logos is None else [dict(logo) for logo in request.logos],
            "transaction": {
                "details": dict(request.details) or None,
                "hidden_details": dict(request.hidden_details) or None,
                "device_details": {},
                "device_geolocation": "",
                "device_signing_time": unix(request.processed_at or now),
                "encrypted": False,
                "flagged": False,
                "message": request.message,
                "reason": request.reason or "",
                "requester_details": None,
                "status": status,
                "uuid": request.uuid,
                "created_at_time": created,
                "customer_uuid": customer_uuid(settings),
            },
        },
        "device": device_payload(device, ip=request.responder_ip, now=now),
    }


def test_callback(settings: EmulatorSettings, now: datetime) -> dict[str, Any]:
    """What the console sends when the callback URL is saved: authy_id 1234, made-up data."""
    moment = unix(now)
    request_uuid = new_request_uuid()
    device = Device(
        id=1234567,
        authy_id=TEST_CALLBACK_AUTHY_ID,
        totp_secret=b"",
        registered_at=now,
        registration_ip="127.0.0.1",
    )
    return {
        "authy_id": TEST_CALLBACK_AUTHY_ID,
        "device_uuid": device.id,
        "callback_action": "approval_request_status",
        "uuid": request_uuid,
        "status": "approved",
        "signature": random_device_signature(),
        "approval_request": {
            "app_id": app_object_id(settings),
            "expiration_timestamp": moment + 86400,
            "logos": None,
            "transaction": {
                "details": {"Test": "This is a test callback"},
                "hidden_details": None,
                "device_details": {},
                "device_geolocation": "",
                "device_signing_time": moment,
                "encrypted": False,
                "flagged": False,
                "message": "Test callback",
                "reason": "",
                "requester_details": None,
                "status": "approved",
                "uuid": request_uuid,
                "created_at_time": moment,
                "customer_uuid": customer_uuid(settings),
            },
        },
        "device": device_payload(device, ip="127.0.0.1", now=now),
    }


def channel_ignored(user: User, device: Device, channel: str) -> dict[str, Any]:
    """Authy's answer to an SMS or call request for a user who has the app (spec 3.5)."""
    phone = masked_phone(user.cellphone)
    cellphone = None if phone is None else f"+{user.country_code}-{phone}"
    return {
        "message": (
            f"Ignored: {channel} is not needed for smartphones."
            " Pass force=true if you want to actually send it anyway."
        ),
        "cellphone": cellphone,
        "device": device.os_type,
        "ignored": True,
        "success": True,
    }


def totp_uri(settings: EmulatorSettings, device: Device, label: str) -> str:
    """The Key Uri Format an authenticator app reads: Authy's codes are 7 digits."""
    issuer = quote(settings.app_name, safe="")
    secret = base64.b32encode(device.totp_secret).decode("ascii").rstrip("=")
    query = urlencode(
        {
            "secret": secret,
            "issuer": settings.app_name,
            "algorithm": "SHA1",
            "digits": totp.DIGITS,
            "period": totp.STEP_SECONDS,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{issuer}:{quote(label, safe='@')}?{query}"


def totp_secret(
    settings: EmulatorSettings, device: Device, label: str, size: int
) -> dict[str, Any]:
    """``users/{id}/secret``. Real Authy's body is not public; ``qr_code`` is an image
    the app can put straight into ``<img src>``, ``uri`` the same secret as text."""
    uri = totp_uri(settings, device, label)
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    buffer = BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    svg = re.sub(r'width="[^"]*" height="[^"]*"', f'width="{size}" height="{size}"', svg, count=1)
    data_url = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")
    return {
        "label": label,
        "issuer": settings.app_name,
        "qr_code": data_url,
        "uri": uri,
        "success": True,
    }


def app_details(settings: EmulatorSettings) -> dict[str, Any]:
    """``app/details``: what the application is and can do here (no SMS, no calls)."""
    return {
        "app": {
            "app_id": app_serial_id(settings),
            "name": settings.app_name,
            "plan": "self_hosted",
            "sms_enabled": False,
            "phone_calls_enabled": False,
            "onetouch_enabled": True,
            "white_label": False,
        },
        "message": "Application information.",
        "success": True,
    }


def app_stats(settings: EmulatorSettings, now: datetime) -> dict[str, Any]:
    """``app/stats``: the shape of Authy's monthly statistics. The push service keeps no
    usage counters, so the current month is reported with zeros, said in ``message``."""
    month = {
        "month": now.strftime("%B"),
        "year": now.year,
        "api_calls_count": 0,
        "auths_count": 0,
        "calls_count": 0,
        "sms_count": 0,
        "users_count": 0,
    }
    return {
        "app_id": app_serial_id(settings),
        "count": 1,
        "stats": [month],
        "message": "Monthly statistics. This push service keeps no usage counters.",
        "success": True,
    }
