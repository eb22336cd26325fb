"""The control API: the test and development door that drives a phone without one —
enrol from a registration token, list pending pushes, answer them (and get back the status
the app's webhook answered), read the current TOTP code.

Its shapes are a stable contract for other tools. Whoever holds it can approve any login,
so in every mode, development included, it demands the Authy API key, in the
``X-Authy-API-Key`` header only: a key in a query string ends up in logs and histories,
and one in a body in whatever records bodies.
"""

from __future__ import annotations

import json
from typing import Any

from quart import Blueprint, request

from . import errors, payloads
from .authy_api import authy_id_from, check_api_key
from .service import current_emulator

control_api = Blueprint("control_api", __name__, url_prefix="/_emulator/api")

JSON = tuple[Any, int]


class BadBody(Exception):
    pass


@control_api.before_request
async def require_key_header() -> None:
    check_api_key(header_only=True)


@control_api.errorhandler(BadBody)
async def bad_body(error: BadBody) -> JSON:
    return {"error": str(error)}, 400


@control_api.errorhandler(errors.RegistrationRejected)
async def registration_rejected(error: errors.RegistrationRejected) -> JSON:
    return {"error": str(error)}, 400


@control_api.errorhandler(errors.UnknownUser)
@control_api.errorhandler(errors.DeviceMissing)
async def unknown_device(_: errors.EmulatorError) -> JSON:
    return {"error": "no such device"}, 404


@control_api.errorhandler(errors.UnknownRequest)
async def unknown_request(_: errors.UnknownRequest) -> JSON:
    return {"error": "no such approval request"}, 404


@control_api.errorhandler(errors.RequestNotPending)
async def not_pending(_: errors.RequestNotPending) -> JSON:
    return {"error": "the approval request is no longer pending"}, 409


async def json_object() -> dict[str, Any]:
    body = await request.get_data(cache=True, as_text=False, parse_form_data=False)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadBody("the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise BadBody("the body must be a JSON object")
    return data


@control_api.post("/devices")
async def enrol_device() -> JSON:
    token = (await json_object()).get("token")
    if not isinstance(token, str):
        raise BadBody('"token" must be a registration token')
    device = await current_emulator().enrol(token, request.remote_addr or "127.0.0.1")
    return {"authy_id": device.authy_id}, 201


@control_api.get("/devices/<authy_id>/requests")
async def pending_requests(authy_id: str) -> JSON:
    pending = await current_emulator().pending_requests(authy_id_from(authy_id))
    return [
        {
            "uuid": r.uuid,
            "message": r.message,
            "details": dict(r.details),
            "hidden_details": dict(r.hidden_details),
            "expires_at": payloads.iso_or_none(r.expires_at),
        }
        for r in pending
    ], 200


@control_api.post("/requests/<request_uuid>")
async def decide_request(request_uuid: str) -> JSON:
    body = await json_object()
    status, reason = body.get("status"), body.get("reason")
    if status not in ("approved", "denied"):
        raise BadBody('"status" must be "approved" or "denied"')
    code = body.get("code")
    if code is not None:
        # Number matching: the number picked on the phone travels back as the reason, and
        # the app (which alone knows the right one) decides.
        if not isinstance(code, str | int) or isinstance(code, bool) or len(str(code)) > 8:
            raise BadBody('"code" must be the picked number')
        reason = reason or str(code)
    if reason is not None and (not isinstance(reason, str) or len(reason) > 200):
        raise BadBody('"reason" must be a string of at most 200 characters')
    emulator = current_emulator()
    decided = await emulator.decide(
        request_uuid, status, reason=reason, responder_ip=request.remote_addr
    )
    return {"callback_status": await emulator.send_callback(decided)}, 200


@control_api.get("/devices/<authy_id>/totp")
async def current_code(authy_id: str) -> JSON:
    return await current_emulator().current_code(authy_id_from(authy_id)), 200


@control_api.post("/test-callback")
async def test_callback() -> JSON:
    return {"callback_status": await current_emulator().send_test_callback()}, 200
