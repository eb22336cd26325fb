"""The Authy OneTouch callback: the phone's answer, signed by the push service.

Checks, in order, before anything changes: size and content type, the signature over the
PUBLIC callback URL (what Authy signed, not what a proxy shows us), a fresh nonce, no
replay, a well-formed body, and a challenge matching both the request uuid and the device.
Every rejection is answered with a 4xx and an audit line, and changes nothing.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from quart import Blueprint, current_app, request

from push2fa import services
from push2fa.authy import signature
from push2fa.authy.params import ParamsError, parse_query
from push2fa.domain import audit, webhook_nonces
from push2fa.domain.inputs import MAX_BIGINT, parse_id
from push2fa.domain.push_answers import UnknownRequest, apply_callback
from push2fa.models import ChallengeStatus
from push2fa.web import write_budget
from push2fa.web.csrf import csrf_exempt
from push2fa.web.limits import rate_exempt
from push2fa.web.policy import public

log = logging.getLogger("push2fa.webhooks")

blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")

MAX_WEBHOOK_BYTES = 64 * 1024
CONSOLE_TEST_AUTHY_ID = 1234
SIGNATURE_HEADER = "X-Authy-Signature"
NONCE_HEADER = "X-Authy-Signature-Nonce"

Reply = tuple[dict[str, str], int]


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def _read_params() -> dict[str, Any] | bytes:
    """The signed parameters: the JSON body of a POST, the raw query string of a GET."""
    if request.method == "GET":
        return request.query_string
    if request.mimetype != "application/json":
        raise Rejected(415, "expected application/json")
    raw = await request.get_data(as_text=False)
    if len(raw) > MAX_WEBHOOK_BYTES:
        raise Rejected(413, "body too large")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
        raise Rejected(400, "body is not JSON") from None
    if not isinstance(body, dict):
        raise Rejected(400, "body is not a JSON object")
    return body


def _fields(params: dict[str, Any] | bytes) -> tuple[int, str, ChallengeStatus, str | None]:
    """authy_id, request uuid, decision and reason from a verified callback."""
    try:
        data = parse_query(params) if isinstance(params, bytes) else params
    except ParamsError:
        raise Rejected(400, "malformed query") from None
    if not isinstance(data, dict):
        raise Rejected(400, "body is not a JSON object")
    authy_id = parse_id(data.get("authy_id"), maximum=MAX_BIGINT)
    uuid, status = data.get("uuid"), data.get("status")
    if authy_id is None:
        raise Rejected(400, "authy_id missing or not a number")
    if not isinstance(uuid, str) or not 0 < len(uuid) <= 64:
        raise Rejected(400, "uuid missing")
    if not isinstance(status, str) or status not in _DECISIONS:
        raise Rejected(400, "status must be approved or denied")
    return authy_id, uuid, ChallengeStatus(status), _reason(data)


_DECISIONS = {ChallengeStatus.APPROVED.value, ChallengeStatus.DENIED.value}


def _reason(data: dict[str, Any]) -> str | None:
    """approval_request.transaction.reason, when every level has the expected shape."""
    request_part = data.get("approval_request")
    transaction = request_part.get("transaction") if isinstance(request_part, dict) else None
    reason = transaction.get("reason") if isinstance(transaction, dict) else None
    return reason if isinstance(reason, str) else None


async def _handle() -> Reply:
    svc = services.current()
    settings = svc.settings
    if (request.content_length or 0) > MAX_WEBHOOK_BYTES:
        raise Rejected(413, "body too large")
    sig = request.headers.get(SIGNATURE_HEADER, "")
    nonce = request.headers.get(NONCE_HEADER, "")
    if not sig or not nonce:
        raise Rejected(401, "missing signature headers")
    params = await _read_params()
    if not signature.verify(
        settings.authy_api_key, nonce, request.method, settings.webhook_url, params, sig
    ):
        raise Rejected(401, "bad signature")
    if not webhook_nonces.is_fresh(nonce, time.time()):
        raise Rejected(401, "stale nonce")
    authy_id, uuid, status, reason = _fields(params)
    async with svc.db.session() as db:
        if not await webhook_nonces.remember(db, nonce, sig):
            raise Rejected(409, "replayed callback")
        # A signed, fresh, first-seen callback: the webhook path works, the poll may rest.
        svc.push_client().poll_budget.callback_arrived()
        if authy_id == CONSOLE_TEST_AUTHY_ID:
            log.info("Authy console test callback received; the webhook is reachable")
            await db.commit()
            return {"status": "ok", "note": "test callback ignored"}, 200
        try:
            changed = await apply_callback(db, svc, uuid, authy_id, status, reason, by="webhook")
        except UnknownRequest:
            audit.record(db, "webhook.unknown_request", None, authy_id=authy_id)
            await db.commit()
            return {"status": "ok", "note": "no such request"}, 200
    return {"status": "ok", "note": "decided" if changed else "already decided"}, 200


@blueprint.route("/authy", methods=["GET", "POST"])
@public
@rate_exempt  # signed by the push service, whose addresses are shared and unknown
@csrf_exempt("signed by the push service (X-Authy-Signature); no browser session")
async def authy_callback() -> Reply:
    try:
        return await _handle()
    except Rejected as rejected:
        ip = request.remote_addr or "-"
        # Anyone can send these: a few per source are written down, the rest only counted.
        if write_budget.rejected_webhooks(current_app).allow(ip):
            log.warning("webhook rejected (%s) from %s: %s", rejected.status, ip, rejected.reason)
            async with services.current().db.session() as db:
                audit.record(db, "webhook.rejected", None, reason=rejected.reason)
                await db.commit()
        return {"status": "rejected", "reason": rejected.reason}, rejected.status
