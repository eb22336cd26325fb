"""The phone page: the Authy app played in a browser, a real phone's or a test's.

It enrols from the registration token the app shows (the QR link opens
``/_emulator/phone?token=...``), keeps the enrolled devices in a signed HttpOnly cookie,
shows each account's live TOTP code and its pending pushes, and answers them with plain
CSRF-protected forms (JavaScript only enhances: fetch instead of reload, live arrival over
Socket.IO). The token is taken out of the address bar by a redirect right after enrolling.

Every answer is a ``status`` and an optional ``reason``, as the Authy app sends them: a
number picked for number matching approves with the number as the reason, and Report
("this wasn't me") denies with the reason ``reported``. The app, not the phone, decides
what a reason means.
"""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, Response, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from . import errors, totp
from .phone_session import COOKIE_NAME, COOKIE_PATH, MAX_AGE_SECONDS, PhoneSession
from .phone_updates import SOCKETIO_PATH, request_card
from .service import Emulator, current_emulator, now_utc
from .store import Device

phone = Blueprint(
    "phone",
    __name__,
    url_prefix="/_emulator/phone",
    static_folder="static",
    static_url_path="/assets",
)

NOTICES = {
    "enrolled": "Account added to this phone.",
    "approved": "Request approved.",
    "picked": "Number sent. Your login screen shows whether it matched.",
    "denied": "Request denied.",
    "reported": "Reported as not you. The request was denied and the site was told.",
    "forgotten": "Account removed from this phone.",
    "stale": "That request was already answered or has expired.",
}
DECISIONS = {"approved", "denied"}
REPORTED = "reported"
MAX_REASON_LENGTH = 200


def phone_session(emulator: Emulator) -> PhoneSession | None:
    return emulator.cookies.loads(request.cookies.get(COOKIE_NAME))


def client_ip() -> str:
    return request.remote_addr or "127.0.0.1"


def is_https() -> bool:
    """The scheme as the trusted proxies (PUSH2FA_TRUSTED_PROXIES) resolved it, never a
    forwarding header a client may have set itself."""
    return request.scheme == "https"


def with_cookie(response: Response, emulator: Emulator, session: PhoneSession) -> Response:
    response.set_cookie(
        COOKIE_NAME,
        emulator.cookies.dumps(session),
        max_age=MAX_AGE_SECONDS,
        path=COOKIE_PATH,
        secure=is_https(),
        httponly=True,
        samesite="Lax",
    )
    return response


def back_to_phone(notice: str) -> Response:
    """Post/redirect/get; the notice is a fixed key, never text from the request."""
    return Response("", 303, headers={"Location": url_for("phone.show", done=notice)})


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


@phone.get("")
async def show() -> Response:
    emulator = current_emulator()
    session = phone_session(emulator) or PhoneSession()
    token = request.args.get("token")
    if token:
        return await enrol_with(emulator, session, token)
    notice = NOTICES.get(request.args.get("done", ""))
    return with_cookie(await page(emulator, session, notice=notice), emulator, session)


@phone.post("/enrol")
async def enrol() -> Response:
    emulator = current_emulator()
    session, form = await checked_form(emulator)
    return await enrol_with(emulator, session, form.get("token", "").strip())


async def enrol_with(emulator: Emulator, session: PhoneSession, token: str) -> Response:
    try:
        device = await emulator.enrol(token, client_ip())
    except errors.RegistrationRejected as exc:
        response = await page(emulator, session, error=f"Could not add the account: {exc}.")
        response.status_code = 400
        return with_cookie(response, emulator, session)
    return with_cookie(back_to_phone("enrolled"), emulator, session.with_device(device.id))


@phone.post("/requests/<request_uuid>")
async def decide(request_uuid: str) -> Response | tuple[dict[str, Any], int]:
    emulator = current_emulator()
    session, form = await checked_form(emulator)
    status = form.get("status", "")
    if status not in DECISIONS:
        return answer(400, "Choose approve or deny.")
    reason = form.get("reason", "").strip()[:MAX_REASON_LENGTH] or None
    try:
        decided = await emulator.decide(
            request_uuid,
            "approved" if status == "approved" else "denied",
            reason=reason,
            responder_ip=client_ip(),
            phone_devices=session.device_ids,
        )
    except (errors.UnknownRequest, errors.NotYourRequest):
        return answer(404, "This phone has no such request.")
    except errors.RequestNotPending:
        return answer(409, NOTICES["stale"], notice="stale")
    emulator.send_callback_later(decided)
    notice = notice_for(status, reason)
    return answer(200, NOTICES[notice], notice=notice, status=status)


def notice_for(status: str, reason: str | None) -> str:
    if status == "approved":
        return "picked" if reason else "approved"
    return "reported" if reason == REPORTED else "denied"


@phone.post("/accounts/<int:device_id>/forget")
async def forget(device_id: int) -> Response:
    emulator = current_emulator()
    session, _ = await checked_form(emulator)
    return with_cookie(back_to_phone("forgotten"), emulator, session.without_devices({device_id}))


def answer(
    code: int, message: str, *, notice: str | None = None, status: str | None = None
) -> Response | tuple[dict[str, Any], int]:
    """JSON for the page's fetch, a redirect (or a plain error) for a form without JS."""
    if wants_json():
        body: dict[str, Any] = {"message": message}
        if status is not None:
            body["status"] = status
        return body, code
    if notice is not None:
        return back_to_phone(notice)
    return Response(message, code, content_type="text/plain; charset=utf-8")


class CsrfFailed(Exception):
    pass


@phone.errorhandler(CsrfFailed)
async def csrf_failed(_: CsrfFailed) -> tuple[str, int, dict[str, str]]:
    message = "This form has expired. Reload the page and try again."
    return message, 400, {"Content-Type": "text/plain; charset=utf-8"}


async def checked_form(emulator: Emulator) -> tuple[PhoneSession, MultiDict[str, str]]:
    session = phone_session(emulator)
    form = await request.form
    if session is None or not emulator.cookies.csrf_ok(session, form.get("csrf_token")):
        raise CsrfFailed()
    return session, form


async def page(
    emulator: Emulator,
    session: PhoneSession,
    *,
    notice: str | None = None,
    error: str | None = None,
) -> Response:
    devices = await known_devices(emulator, session)
    now = now_utc()
    accounts, requests = [], []
    for device in devices:
        user = await emulator.store.get_user(device.authy_id)
        accounts.append(account_view(device, None if user is None else user.custom_user_id))
        pending = await emulator.store.pending_requests_for(device.authy_id, now)
        requests += [request_card(r) for r in pending]
    html = await render_template(
        "emulator/phone.html",
        app_name=emulator.settings.app_name,
        accounts=accounts,
        requests=sorted(requests, key=lambda r: r["created_at"]),
        csrf_token=emulator.cookies.csrf_token(session),
        socketio_path=SOCKETIO_PATH,
        notice=notice,
        error=error,
    )
    return Response(html, content_type="text/html; charset=utf-8")


async def known_devices(emulator: Emulator, session: PhoneSession) -> list[Device]:
    found = [await emulator.store.get_device(d) for d in session.device_ids]
    return [device for device in found if device is not None]


def account_view(device: Device, label: str | None) -> dict[str, Any]:
    now = time.time()
    return {
        "device_id": device.id,
        "authy_id": device.authy_id,
        "label": f"User ID {label}" if label else f"Authy ID {device.authy_id}",
        "code": totp.code_at(device.totp_secret, now),
        "seconds_left": totp.seconds_left(now),
    }
