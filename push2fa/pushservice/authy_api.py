"""The Authy REST endpoints, answered as api.authy.com answers them.

Paths, parameters, status codes and bodies follow the protocol reference, so an app
written for api.authy.com runs unchanged against the push service by changing only its
base URL. Every route needs the API key. Routes that Authy offered in both formats take
``json`` or ``xml`` in place of the format segment; ``docs/authy-compatibility.md`` lists
what each endpoint does here and what could not be learnt about real Authy. One route is a
push2fa extension that real Authy does not have: withdrawing a request the app no longer
wants, so that it leaves the phone at once.
"""

from __future__ import annotations

import hmac
from typing import Any

from quart import Blueprint, Response, request

from . import devices, errors, inputs, payloads, xml_format
from .errors import AuthyErrorAnswer
from .service import current_emulator, now_utc

authy_api = Blueprint("authy_api", __name__, url_prefix="/_emulator")

JSON = tuple[dict[str, Any], int]
FORMATS = frozenset({"json", "xml"})


@authy_api.before_request
async def require_api_key() -> None:
    fmt = (request.view_args or {}).get("fmt")
    if fmt is not None and fmt not in FORMATS:
        raise AuthyErrorAnswer(404, "60002", f"Unsupported format: {str(fmt)[:20]}")
    check_api_key()


@authy_api.after_request
async def answer_in_requested_format(response: Response) -> Response:
    """``/protected/xml/...``: the same answer, as the Rails XML the format stood for."""
    if (request.view_args or {}).get("fmt") != "xml" or response.mimetype != "application/json":
        return response
    body = await response.get_json()
    response.set_data(xml_format.dumps(body))
    response.mimetype = "application/xml"
    return response


def check_api_key(*, header_only: bool = False) -> None:
    """Header ``X-Authy-API-Key`` (or, as Authy allows, query ``api_key`` unless
    ``header_only``), compared in constant time."""
    given = request.headers.get("X-Authy-API-Key") or ""
    if not given and not header_only:
        given = request.args.get("api_key") or ""
    if not has_api_key(given):
        raise errors.invalid_api_key()


def has_api_key(given: str) -> bool:
    expected = current_emulator().settings.api_key.encode("utf-8")
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected)


def authy_id_from(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise errors.UnknownUser(text)
    return int(text)


@authy_api.errorhandler(errors.UnknownUser)
async def unknown_user(_: errors.UnknownUser) -> JSON:
    return _authy_error(errors.user_not_found())


@authy_api.errorhandler(errors.UnknownRequest)
async def unknown_request(error: errors.UnknownRequest) -> JSON:
    return _authy_error(errors.approval_request_not_found(str(error.args[0])))


@authy_api.errorhandler(errors.DeviceMissing)
async def device_missing(_: errors.DeviceMissing) -> JSON:
    return _authy_error(errors.onetouch_unregistered_user())


@authy_api.errorhandler(errors.TokenRejected)
async def token_rejected(error: errors.TokenRejected) -> JSON:
    return _authy_error(errors.token_reused() if error.reused else errors.token_invalid())


def _authy_error(error: AuthyErrorAnswer) -> JSON:
    return error.body(), error.status


@authy_api.post("/protected/<fmt>/users/new")
async def create_user(fmt: str) -> JSON:
    email, cellphone, country_code = inputs.new_user(await inputs.request_params())
    user = await current_emulator().create_user(email, cellphone, country_code)
    body = {"message": "User created successfully.", "user": {"id": user.authy_id}}
    return {**body, "success": True}, 200


@authy_api.get("/protected/<fmt>/users/<authy_id>/status")
async def user_status(fmt: str, authy_id: str) -> JSON:
    user, devices = await current_emulator().user(authy_id_from(authy_id))
    return payloads.user_status(user, devices), 200


@authy_api.post("/protected/<fmt>/users/delete/<authy_id>")  # ruby, java
@authy_api.post("/protected/<fmt>/users/<authy_id>/delete")  # python, rust
@authy_api.post("/protected/<fmt>/users/<authy_id>/remove")  # php
async def delete_user(fmt: str, authy_id: str) -> JSON:
    await current_emulator().delete_user(authy_id_from(authy_id))
    return {"message": "User removed from application", "success": True}, 200


@authy_api.get("/protected/json/registrations/status")
async def registration_status() -> JSON:
    params = await inputs.request_params()
    custom_user_id = inputs.required_text(params, "custom_user_id")
    authy_id = await current_emulator().store.registration_status(custom_user_id)
    registration: dict[str, Any] = {"status": "pending"}
    if authy_id is not None:
        registration = {"status": "completed", "authy_id": authy_id}
    return {"registration": registration, "success": True}, 200


@authy_api.post("/onetouch/<fmt>/users/<authy_id>/approval_requests")
async def create_approval_request(fmt: str, authy_id: str) -> JSON:
    new = inputs.new_approval_request(await inputs.request_params())
    created = await current_emulator().create_request(authy_id_from(authy_id), new)
    return {"approval_request": {"uuid": created.uuid}, "success": True}, 200


@authy_api.get("/onetouch/<fmt>/approval_requests/<request_uuid>")
async def approval_request_status(fmt: str, request_uuid: str) -> JSON:
    return await current_emulator().request_status(request_uuid), 200


@authy_api.post("/onetouch/json/approval_requests/<request_uuid>/withdraw")
async def withdraw_approval_request(request_uuid: str) -> JSON:
    """push2fa extension (not in Authy's API): the app no longer wants an answer. Idempotent:
    ``withdrawn`` says whether this call took a pending request off the phone."""
    try:
        await current_emulator().withdraw(request_uuid)
    except errors.RequestNotPending:
        withdrawn = False
    else:
        withdrawn = True
    body = {"approval_request": {"uuid": request_uuid}, "withdrawn": withdrawn}
    return {**body, "success": True}, 200


# --- push2fa extensions: the account's devices (security page) ----------------------


def _device_id_from(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise devices.device_not_found()
    return int(text)


@authy_api.get("/protected/json/users/<authy_id>/devices")
async def list_devices(authy_id: str) -> JSON:
    """push2fa extension: the user's devices, oldest first."""
    found = await devices.list_devices(current_emulator(), authy_id_from(authy_id))
    return {"devices": found, "success": True}, 200


@authy_api.post("/protected/json/users/<authy_id>/devices/<device_id>/remove")
async def remove_device(authy_id: str, device_id: str) -> JSON:
    """push2fa extension: remove one device of this user, at once (404 if not theirs)."""
    await devices.remove_device(
        current_emulator(), authy_id_from(authy_id), _device_id_from(device_id)
    )
    return {"message": "Device removed.", "success": True}, 200


@authy_api.post("/protected/json/users/<authy_id>/devices/<device_id>/test_push")
async def test_push(authy_id: str, device_id: str) -> JSON:
    """push2fa extension: a test notification to one device of this user."""
    outcome = await devices.test_push(
        current_emulator(), authy_id_from(authy_id), _device_id_from(device_id)
    )
    return {"push": outcome, "success": True}, 200


@authy_api.get("/protected/<fmt>/verify/<token>/<authy_id>")
async def verify_token(fmt: str, token: str, authy_id: str) -> JSON:
    device = await current_emulator().verify_token(token, authy_id_from(authy_id))
    body = {"message": "Token is valid.", "token": "is valid", "success": "true"}
    return {**body, "device": payloads.device_payload(device, ip=None, now=now_utc())}, 200


# --- SMS, voice and e-mail: nothing to deliver them with -----------------------------


@authy_api.route("/protected/<fmt>/sms/<authy_id>", methods=["GET", "POST"])
async def request_sms(fmt: str, authy_id: str) -> JSON:
    return await _no_sms_or_call(authy_id, "SMS")


@authy_api.route("/protected/<fmt>/call/<authy_id>", methods=["GET", "POST"])
async def request_call(fmt: str, authy_id: str) -> JSON:
    return await _no_sms_or_call(authy_id, "Call")


async def _no_sms_or_call(authy_id: str, channel: str) -> JSON:
    """A self-hosted service has no SMS or voice gateway. A user with the app gets Authy's
    own "ignored" answer (the code is in the app); anyone else, or ``force=true``, gets a
    clear 403 (Authy's status for a feature the account lacks), so the app can offer
    another way and never believes a code was sent."""
    user, devices = await current_emulator().user(authy_id_from(authy_id))
    params = await inputs.request_params()
    if devices and not inputs.flag(params, "force"):
        return payloads.channel_ignored(user, devices[0], channel), 200
    raise errors.channel_unavailable(channel)


@authy_api.post("/protected/<fmt>/email/<authy_id>")
async def request_email(fmt: str, authy_id: str) -> JSON:
    await current_emulator().user(authy_id_from(authy_id))
    raise errors.channel_unavailable("Email")


@authy_api.post("/protected/<fmt>/phones/verification/start")
@authy_api.get("/protected/<fmt>/phones/verification/check")
@authy_api.get("/protected/<fmt>/phones/info")
async def phone_verification(fmt: str) -> JSON:
    """Phone Verification v1 sends codes by SMS or voice and looks numbers up at carriers:
    nothing a self-hosted service can do, so a clear 403 rather than a 404."""
    raise errors.channel_unavailable("Phone verification")


# --- TOTP for third-party authenticator apps ------------------------------------------


@authy_api.post("/protected/<fmt>/users/<authy_id>/secret")
async def totp_secret(fmt: str, authy_id: str) -> JSON:
    """The QR code a third-party authenticator app scans to show this user's codes: the
    secret of the user's Approver, so a code from either app verifies."""
    emulator = current_emulator()
    user, devices = await emulator.user(authy_id_from(authy_id))
    if not devices:
        raise errors.DeviceMissing(user.authy_id)
    params = await inputs.request_params()
    size = inputs.qr_size(params)
    label = inputs.optional_text(params, "label", 64) or user.email or str(user.authy_id)
    return payloads.totp_secret(emulator.settings, devices[0], label, size), 200


# --- the application ------------------------------------------------------------------


@authy_api.get("/protected/<fmt>/app/details")
async def app_details(fmt: str) -> JSON:
    return payloads.app_details(current_emulator().settings), 200


@authy_api.get("/protected/<fmt>/app/stats")
async def app_stats(fmt: str) -> JSON:
    return payloads.app_stats(current_emulator().settings, now_utc()), 200
