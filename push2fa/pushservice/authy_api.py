"""The Authy REST endpoints the app uses, answered as api.authy.com answers them.

Paths, parameters, status codes and bodies follow the protocol reference, so the app's
Authy client runs unchanged against push2fa's push service. Every route needs the API key.
One route is a push2fa extension that real Authy does not have: withdrawing a request the
app no longer wants, so that it leaves the phone at once.
"""

from __future__ import annotations

import hmac
from typing import Any

from quart import Blueprint, request

from . import errors, inputs, payloads
from .errors import AuthyError
from .service import current_emulator, now_utc

authy_api = Blueprint("authy_api", __name__, url_prefix="/_emulator")

JSON = tuple[dict[str, Any], int]


@authy_api.before_request
async def require_api_key() -> None:
    check_api_key()


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


def _authy_error(error: AuthyError) -> JSON:
    return error.body(), error.status


@authy_api.post("/protected/json/users/new")
async def create_user() -> JSON:
    email, cellphone, country_code = inputs.new_user(await inputs.request_params())
    user = await current_emulator().create_user(email, cellphone, country_code)
    body = {"message": "User created successfully.", "user": {"id": user.authy_id}}
    return {**body, "success": True}, 200


@authy_api.get("/protected/json/users/<authy_id>/status")
async def user_status(authy_id: str) -> JSON:
    user, devices = await current_emulator().user(authy_id_from(authy_id))
    return payloads.user_status(user, devices), 200


@authy_api.post("/protected/json/users/delete/<authy_id>")  # ruby, java
@authy_api.post("/protected/json/users/<authy_id>/delete")  # python, rust
@authy_api.post("/protected/json/users/<authy_id>/remove")  # php
async def delete_user(authy_id: str) -> JSON:
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


@authy_api.post("/onetouch/json/users/<authy_id>/approval_requests")
async def create_approval_request(authy_id: str) -> JSON:
    new = inputs.new_approval_request(await inputs.request_params())
    created = await current_emulator().create_request(authy_id_from(authy_id), new)
    return {"approval_request": {"uuid": created.uuid}, "success": True}, 200


@authy_api.get("/onetouch/json/approval_requests/<request_uuid>")
async def approval_request_status(request_uuid: str) -> JSON:
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


@authy_api.get("/protected/json/verify/<token>/<authy_id>")
async def verify_token(token: str, authy_id: str) -> JSON:
    device = await current_emulator().verify_token(token, authy_id_from(authy_id))
    body = {"message": "Token is valid.", "token": "is valid", "success": "true"}
    return {**body, "device": payloads.device_payload(device, ip=None, now=now_utc())}, 200
