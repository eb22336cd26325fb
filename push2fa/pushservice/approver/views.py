"""The Approver's pages and JSON API, under ``/_emulator/approver``.

Pages: the app itself (one page; JavaScript does the WebAuthn ceremonies), its manifest,
its service worker (served from this folder so its scope is the Approver), an offline page.
The API is JSON only: a cross-site form cannot send ``application/json`` without a CORS
preflight, and a browser's ``Origin`` other than an allowed one is refused as well. Every
rule is in :mod:`push2fa.pushservice.approver.rules` (and, for accounts proving their
e-mail, in :mod:`.email_codes`); these views parse, rate-limit, call and answer.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from quart import Blueprint, Response, render_template, request, send_from_directory
from quart_rate_limiter import RateLimit, RateLimitExceeded, rate_limit

from push2fa.pushservice.approver.rules import Grant, Refused
from push2fa.pushservice.phone import client_ip, phone_session, with_cookie
from push2fa.pushservice.phone_session import PhoneSession
from push2fa.pushservice.phone_updates import SOCKETIO_PATH, request_card
from push2fa.pushservice.service import current_emulator, now_utc

from .service import client_key, current_approver

approver = Blueprint(
    "approver",
    __name__,
    url_prefix="/_emulator/approver",
    static_folder="static",
    static_url_path="/assets",
    template_folder="templates",
)

MAX_JSON_BYTES = 32 * 1024


@approver.errorhandler(Refused)
async def refused(error: Refused) -> tuple[dict[str, Any], int]:
    return {"error": error.message}, error.status


@approver.errorhandler(RateLimitExceeded)
async def too_many(error: RateLimitExceeded) -> tuple[dict[str, Any], int, dict[str, str]]:
    seconds = error.retry_after if isinstance(error.retry_after, int) else 60
    minutes = max(1, -(-seconds // 60))
    message = f"Too many tries. Wait {minutes} minute{'s' if minutes > 1 else ''} and try again."
    return {"error": message}, 429, {"Retry-After": str(seconds)}


async def address_key() -> str:
    """The per-address key of an e-mail code request: the typed address, normalised and
    keyed, whether or not anybody has it."""
    data = await request.get_json(silent=True)
    email = data.get("email") if isinstance(data, dict) else None
    return current_approver().email.address_key(email)


# E-mail codes: a few per address and per client; guesses are capped per code as well.
CODE_REQUESTS = [
    RateLimit(3, timedelta(minutes=15), key_function=address_key),
    RateLimit(10, timedelta(hours=1), key_function=client_key),
]
CODE_TRIES = [
    RateLimit(10, timedelta(minutes=15), key_function=address_key),
    RateLimit(20, timedelta(minutes=15), key_function=client_key),
]


class BadInput(Refused):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


async def json_body() -> dict[str, Any]:
    """The request's JSON object, from an allowed origin; anything else is a 4xx."""
    origin = request.headers.get("Origin")
    if origin is not None and origin not in current_approver().settings.rp.origins:
        raise Refused(403, "Requests from another site are refused.")
    if request.mimetype != "application/json":
        raise Refused(415, "Send JSON.")
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise Refused(413, "Too large.")
    data = await request.get_json(silent=True)
    if not isinstance(data, dict):
        raise BadInput("Send a JSON object.")
    return data


# --- pages -------------------------------------------------------------------------


@approver.get("")
@approver.get("/")
async def app_page() -> Response:
    emulator = current_emulator()
    html = await render_template(
        "approver/app.html",
        app_name=emulator.settings.app_name,
        socketio_path=SOCKETIO_PATH,
        push_key=current_approver().settings.vapid.application_server_key,
        email_codes=current_approver().email.available,
    )
    return Response(html, content_type="text/html; charset=utf-8")


@approver.get("/offline")
async def offline_page() -> Response:
    html = await render_template("approver/offline.html")
    return Response(html, content_type="text/html; charset=utf-8")


@approver.get("/manifest.webmanifest")
async def manifest() -> Response:
    name = current_emulator().settings.app_name
    body = {
        "id": "/_emulator/approver/",
        "name": f"{name} Approver",
        "short_name": "Approver",
        "description": "Approve or deny sign-ins to " + name + " with this phone.",
        "start_url": "/_emulator/approver/",
        "scope": "/_emulator/approver/",
        "display": "standalone",
        "background_color": "#0d1b2a",
        "theme_color": "#0d6efd",
        "icons": [
            {
                "src": f"/_emulator/approver/assets/icon-{size}.png",
                "sizes": f"{size}x{size}",
                "type": "image/png",
                "purpose": "any maskable",
            }
            for size in (192, 512)
        ],
    }
    return Response(json.dumps(body), content_type="application/manifest+json")


@approver.get("/sw.js")
async def service_worker() -> Response:
    response = await send_from_directory(approver.static_folder or "", "sw.js")
    response.content_type = "text/javascript; charset=utf-8"
    response.headers["Cache-Control"] = "no-cache"
    return response


# --- enrolment ---------------------------------------------------------------------


async def grant_of(data: dict[str, Any]) -> Grant:
    """The enrolment link's token, or the claim an e-mail code won and the chosen account."""
    approver_ = current_approver()
    if "claim" in data:
        return await approver_.email.grant(data.get("claim"), data.get("account"))
    return approver_.rules.token_grant(data.get("token"))


@approver.post("/api/email/code")
@rate_limit(limits=CODE_REQUESTS)
async def email_code() -> tuple[dict[str, Any], int]:
    """Mail a code to an address the app registered. The same answer for every address."""
    data = await json_body()
    return {"message": current_approver().email.request_code(data.get("email"))}, 202


@approver.post("/api/email/verify")
@rate_limit(limits=CODE_TRIES)
async def email_verify() -> dict[str, Any]:
    """A right code becomes a claim to enrol this phone for one account of the address."""
    data = await json_body()
    verified = await current_approver().email.verify(data.get("email"), data.get("code"))
    return {"claim": verified.claim, "accounts": verified.accounts}


@approver.post("/api/enrol/options")
async def enrol_options() -> dict[str, Any]:
    data = await json_body()
    rules = current_approver().rules
    return await rules.enrol_options(await grant_of(data))


@approver.post("/api/enrol")
async def enrol() -> Response:
    data = await json_body()
    emulator = current_emulator()
    enrolled = await current_approver().rules.enrol(
        ceremony_id=str(data.get("ceremony", "")),
        grant=await grant_of(data),
        credential=data.get("credential"),
        subscription=data.get("subscription"),
        name=str(data.get("name") or "")[:200],
        ip=client_ip(),
    )
    session = phone_session(emulator) or PhoneSession()
    body = {
        "credential": enrolled.credential.credential_id,
        "authy_id": enrolled.device.authy_id,
        "account": enrolled.account,
        "push": data.get("subscription") is not None,
    }
    response = Response(json.dumps(body), 201, content_type="application/json")
    return with_cookie(response, emulator, session.with_device(enrolled.device.id))


@approver.post("/api/subscription")
async def subscription() -> dict[str, Any]:
    """Refresh this phone's push subscription; sent on each open where push is allowed."""
    data = await json_body()
    session = phone_session(current_emulator())
    await current_approver().rules.update_subscription(
        data.get("credential"),
        data.get("subscription"),
        () if session is None else session.device_ids,
    )
    return {"status": "ok"}


# --- requests and decisions ----------------------------------------------------------


@approver.get("/api/requests")
async def pending() -> dict[str, Any]:
    """Pending requests of the accounts on this phone: fetched on open and on focus."""
    emulator = current_emulator()
    session = phone_session(emulator)
    if session is None:
        return {"requests": [], "app_name": emulator.settings.app_name}
    now = now_utc()
    cards: list[dict[str, Any]] = []
    seen: set[int] = set()
    for device_id in session.device_ids:
        device = await emulator.store.get_device(device_id)
        if device is None or device.authy_id in seen:
            continue
        seen.add(device.authy_id)
        user = await emulator.store.get_user(device.authy_id)
        for pending_request in await emulator.store.pending_requests_for(device.authy_id, now):
            card = request_card(pending_request)
            card.pop("choices", None)  # typed, never picked: 1 in 100, not 1 in 3
            card["needs_number"] = bool(pending_request.hidden_details.get("match_choices"))
            card["account"] = None if user is None else (user.custom_user_id or user.email)
            cards.append(card)
    cards.sort(key=lambda c: c["created_at"])
    return {"requests": cards, "app_name": emulator.settings.app_name, "now": now.isoformat()}


@approver.post("/api/requests/<request_uuid>/options")
async def decision_options(request_uuid: str) -> dict[str, Any]:
    data = await json_body()
    return await current_approver().rules.decision_options(
        request_uuid[:64],
        data.get("credential"),  # type: ignore[arg-type]
    )


@approver.post("/api/requests/<request_uuid>/decision")
async def decide(request_uuid: str) -> dict[str, Any]:
    data = await json_body()
    status = await current_approver().rules.decide(
        request_uuid=request_uuid[:64],
        ceremony_id=str(data.get("ceremony", ""))[:64],
        decision=str(data.get("decision", "")),
        number=data.get("number"),
        assertion=data.get("assertion"),
        ip=client_ip(),
    )
    return {"status": status}


# --- TOTP codes ------------------------------------------------------------------------


@approver.post("/api/code/options")
async def code_options() -> dict[str, Any]:
    data = await json_body()
    return await current_approver().rules.code_options(data.get("credential"))


@approver.post("/api/code")
async def code() -> dict[str, Any]:
    """The account's current 7-digit code, for an assertion over the nonce just issued."""
    data = await json_body()
    return await current_approver().rules.show_code(
        ceremony_id=str(data.get("ceremony", ""))[:64], assertion=data.get("assertion")
    )
