"""The Authy callback attacked in-process (Quart's test client): every forged, stale,
future-dated, replayed or malformed callback gets a 4xx and changes nothing; a genuine one
decides its challenge once. These also kill mutants (docs/mutation.md)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from push2fa.authy import signature
from push2fa.domain import challenges, webhook_nonces
from push2fa.domain.webhook_nonces import WINDOW_SECONDS as NONCE_WINDOW_SECONDS
from push2fa.models import (
    AuditEvent,
    ChallengeStatus,
    LoginChallenge,
    User,
    WebhookNonce,
    utcnow,
)
from push2fa.web.app import create_app

API_KEY = "webhook-test-api-key-0123456789abcdef"
PUBLIC = "https://login.example.com"
WEBHOOK = f"{PUBLIC}/webhooks/authy"
AUTHY_ID = 4242


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return {**overrides, "authy_api_key": API_KEY, "public_url": PUBLIC, "rate_limits": False}


@pytest.fixture
async def pending(app) -> LoginChallenge:
    svc = app.extensions["push2fa"]
    for task in svc.tasks:  # only the test decides challenges here
        task.cancel()
    async with svc.db.session() as db:
        user = User(username="dana", email="dana@example.com", password_hash="x", authy_id=AUTHY_ID)
        db.add(user)
        await db.commit()
        challenge = await challenges.create(db, user, challenges.Context("1.2.3.4", "UA"), 60)
        await challenges.attach_provider(db, challenge, "uuid-1", 60)
        return challenge


def body(
    status: str = "approved", uuid: Any = "uuid-1", authy_id: Any = AUTHY_ID
) -> dict[str, Any]:
    return {
        "authy_id": authy_id,
        "uuid": uuid,
        "status": status,
        "approval_request": {"transaction": {"reason": "picked 42"}},
    }


def now_nonce(offset: float = 0) -> str:
    return str(int(time.time() + offset))


async def post(
    client,
    payload: Any,
    *,
    nonce: str | None = None,
    sig: str | None = None,
    key: str = API_KEY,
    content_type: str = "application/json",
    reason: str | None = None,
    note: str | None = None,
) -> int:
    """POST a signed callback; its status. With `reason`, check the refusal says so; with
    `note`, that the acceptance says what became of it."""
    nonce = now_nonce() if nonce is None else nonce
    if sig is None:
        sig = signature.sign(key, nonce, "POST", WEBHOOK, payload)
    response = await client.post(
        "/webhooks/authy",
        data=payload if isinstance(payload, bytes) else json.dumps(payload),
        headers={
            "Content-Type": content_type,
            "X-Authy-Signature": sig,
            "X-Authy-Signature-Nonce": nonce,
        },
    )
    status: int = response.status_code
    if reason is not None:
        assert await response.get_json() == {"status": "rejected", "reason": reason}
    if note is not None:
        assert await response.get_json() == {"status": "ok", "note": note}
    return status


async def status_of(app, challenge: LoginChallenge) -> str:
    async with app.extensions["push2fa"].db.session() as db:
        status: str = (await db.get(LoginChallenge, challenge.id)).status
        return status


async def count(app, model: Any, *where: Any) -> int:
    async with app.extensions["push2fa"].db.session() as db:
        total: int = (
            await db.execute(select(func.count()).select_from(model).where(*where))
        ).scalar()
        return total


async def test_genuine_callback_decides_its_challenge_once(app, client, pending):
    assert await post(client, body(), note="decided") == 200
    assert await post(client, body(), nonce=now_nonce(-1), note="already decided") == 200
    assert await status_of(app, pending) == ChallengeStatus.APPROVED
    async with app.extensions["push2fa"].db.session() as db:
        row = await db.get(LoginChallenge, pending.id)
    assert row.decided_by == "webhook"


async def test_genuine_get_callback_decides_its_challenge(app, client, pending):
    nonce = now_nonce()
    query = "authy_id=4242&status=denied&uuid=uuid-1"
    sig = signature.sign(API_KEY, nonce, "GET", WEBHOOK, query)
    response = await client.get(
        f"/webhooks/authy?{query}",
        headers={"X-Authy-Signature": sig, "X-Authy-Signature-Nonce": nonce},
    )
    assert response.status_code == 200
    assert await status_of(app, pending) == ChallengeStatus.DENIED


@pytest.mark.parametrize("header", ["X-Authy-Signature", "X-Authy-Signature-Nonce"])
async def test_empty_signature_header_refused(app, client, pending, header):
    nonce = now_nonce()
    headers = {
        "Content-Type": "application/json",
        "X-Authy-Signature": signature.sign(API_KEY, nonce, "POST", WEBHOOK, body()),
        "X-Authy-Signature-Nonce": nonce,
        header: "",
    }
    response = await client.post("/webhooks/authy", data=json.dumps(body()), headers=headers)
    assert response.status_code == 401
    assert await status_of(app, pending) == ChallengeStatus.PENDING


async def test_missing_signature_headers_refused(app, client, pending):
    response = await client.post(
        "/webhooks/authy", data=json.dumps(body()), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert await response.get_json() == {
        "status": "rejected",
        "reason": "missing signature headers",
    }
    # Either header alone is as good as none.
    for header in ("X-Authy-Signature", "X-Authy-Signature-Nonce"):
        response = await client.post(
            "/webhooks/authy",
            data=json.dumps(body()),
            headers={"Content-Type": "application/json", header: now_nonce()},
        )
        assert response.status_code == 401
        assert (await response.get_json())["reason"] == "missing signature headers"
    assert await status_of(app, pending) == ChallengeStatus.PENDING
    assert await count(app, AuditEvent, AuditEvent.event == "webhook.rejected") == 3


async def test_callback_signed_with_another_key_refused(app, client, pending):
    attack = await post(client, body(), key="attacker-key-0000000000000000", reason="bad signature")
    assert attack == 401
    assert await status_of(app, pending) == ChallengeStatus.PENDING


async def test_callback_signed_for_another_body_refused(app, client, pending):
    nonce = now_nonce()
    sig = signature.sign(API_KEY, nonce, "POST", WEBHOOK, body("denied"))
    assert await post(client, body("approved"), nonce=nonce, sig=sig) == 401
    assert await status_of(app, pending) == ChallengeStatus.PENDING


async def test_future_dated_nonce_refused(app, client, pending):
    assert await post(client, body(), nonce=now_nonce(NONCE_WINDOW_SECONDS + 60)) == 401
    assert await status_of(app, pending) == ChallengeStatus.PENDING


async def test_stale_nonce_refused(app, client, pending):
    stale = now_nonce(-NONCE_WINDOW_SECONDS - 60)
    assert await post(client, body(), nonce=stale, reason="stale nonce") == 401
    assert await status_of(app, pending) == ChallengeStatus.PENDING


async def test_nonce_inside_the_window_accepted(app, client, pending):
    assert await post(client, body(), nonce=now_nonce(-NONCE_WINDOW_SECONDS + 30)) == 200


@pytest.mark.parametrize("nonce", ["soon", "nan", "inf", "-inf", "1e400"])
async def test_nonce_that_is_not_a_time_refused(app, client, pending, nonce):
    assert await post(client, body(), nonce=nonce) == 401
    assert await status_of(app, pending) == ChallengeStatus.PENDING


async def test_replayed_callback_refused(app, client, pending):
    nonce = now_nonce()
    assert await post(client, body(), nonce=nonce) == 200
    assert await post(client, body(), nonce=nonce, reason="replayed callback") == 409
    assert await count(app, WebhookNonce) == 1


async def test_callback_for_another_device_changes_nothing(app, client, pending):
    assert await post(client, body(authy_id=AUTHY_ID + 1), note="no such request") == 200
    assert await post(client, body(uuid="uuid-2"), note="no such request") == 200
    assert await status_of(app, pending) == ChallengeStatus.PENDING
    async with app.extensions["push2fa"].db.session() as db:
        unknown = select(AuditEvent).where(AuditEvent.event == "webhook.unknown_request")
        rows = (await db.execute(unknown)).scalars().all()
    # Written down with the device it named, for the operator to match with the push service.
    assert [row.details for row in rows] == [{"authy_id": AUTHY_ID + 1}, {"authy_id": AUTHY_ID}]


async def test_console_test_callback_is_ignored(app, client, pending):
    # The push service's console test: acknowledged, so its operator sees the webhook works.
    assert await post(client, body(authy_id=1234), note="test callback ignored") == 200
    assert await status_of(app, pending) == ChallengeStatus.PENDING


@pytest.mark.parametrize(
    "payload",
    [
        body(status="consumed"),
        body(status="pending"),
        body(uuid=""),
        body(uuid="u" * 65),
        body(uuid=7),
        body(authy_id="abc"),
        body(authy_id=True),
        body(authy_id=None),
        body(authy_id=-5),
        body(authy_id=4.5),
        [body()],
    ],
    ids=str,
)
async def test_malformed_signed_callback_gets_400_and_changes_nothing(
    app, client, pending, payload
):
    unsignable = isinstance(payload, list)  # refused before the signature is even checked
    assert await post(client, payload, sig="x" if unsignable else None) == 400
    assert await status_of(app, pending) == ChallengeStatus.PENDING


async def test_callback_that_is_not_json_refused(app, client, pending):
    assert await post(client, b"{not json", sig="x") == 400
    assert await post(client, body(), content_type="text/plain") == 415
    assert await status_of(app, pending) == ChallengeStatus.PENDING


def _padded(size: int) -> bytes:
    """A genuine callback body padded to exactly `size` bytes."""
    raw = json.dumps({**body(), "pad": ""}).encode()
    padded = raw[:-2] + b"x" * (size - len(raw)) + raw[-2:]
    assert len(padded) == size
    return padded


async def _post_with_length(client, raw: bytes) -> Any:
    """POST `raw` signed, stating its Content-Length as a real server hands it over (Quart's
    test client sends none), so the check made before the body is read answers."""
    nonce = now_nonce()
    return await client.post(
        "/webhooks/authy",
        data=raw,
        headers={
            "Content-Type": "application/json",
            "Content-Length": str(len(raw)),
            "X-Authy-Signature": signature.sign(API_KEY, nonce, "POST", WEBHOOK, json.loads(raw)),
            "X-Authy-Signature-Nonce": nonce,
        },
    )


async def test_oversized_callback_refused(app, client, pending):
    padded = {**body(), "pad": "x" * (64 * 1024)}
    assert await post(client, padded) == 413
    response = await _post_with_length(client, _padded(64 * 1024 + 1))
    assert response.status_code == 413
    assert await response.get_json() == {"status": "rejected", "reason": "body too large"}
    assert await status_of(app, pending) == ChallengeStatus.PENDING


async def test_a_callback_of_exactly_the_size_limit_is_taken(app, client, pending):
    response = await _post_with_length(client, _padded(64 * 1024))
    assert response.status_code == 200
    assert await status_of(app, pending) == ChallengeStatus.APPROVED


@pytest.mark.parametrize("picked", [42, ["42"], {"code": "42"}], ids=str)
async def test_a_number_picked_in_the_wrong_shape_is_a_wrong_number_not_a_crash(
    overrides: dict[str, Any], picked: Any
):
    """A signed approval whose pick is not text (a JSON number, list or object) is no pick:
    with number matching on (the emulator's phones pick), the push is denied as the wrong
    number, with no 500."""
    app = create_app({**overrides, "push_service": "emulator"})
    async with app.test_app():
        svc = app.extensions["push2fa"]
        for task in svc.tasks:
            task.cancel()
        async with svc.db.session() as db:
            user = User(
                username="erin", email="erin@example.com", password_hash="x", authy_id=AUTHY_ID
            )
            db.add(user)
            await db.commit()
            context = challenges.Context("1.2.3.4", "UA")
            challenge = await challenges.create(db, user, context, 60, match_code="42")
            await challenges.attach_provider(db, challenge, "uuid-1", 60)
        payload = {**body(), "approval_request": {"transaction": {"reason": picked}}}

        assert await post(app.test_client(), payload) == 200

        async with svc.db.session() as db:
            row = await db.get(LoginChallenge, challenge.id)
        assert (row.status, row.reason) == (ChallengeStatus.DENIED, "wrong_number")


async def test_pruning_forgets_only_pairs_too_old_to_be_replayed(app):
    """A (nonce, signature) pair is kept while its nonce could still pass as fresh, so a
    replay is still caught; past twice the window it is forgotten, and the table stays small."""
    window = timedelta(seconds=NONCE_WINDOW_SECONDS)
    ages = {"just-now": timedelta(0), "in-window": window - timedelta(seconds=5)}
    ages["stale"] = 2 * window + timedelta(seconds=5)
    now = utcnow()
    async with app.extensions["push2fa"].db.session() as db:
        for name, age in ages.items():
            db.add(WebhookNonce(signature=name, nonce="1", received_at=now - age))
        await db.commit()
        await webhook_nonces.prune(db)
        kept = (await db.execute(select(WebhookNonce.signature))).scalars().all()
    assert sorted(kept) == ["in-window", "just-now"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (body(status="pending"), "status must be approved or denied"),
        (body(uuid=""), "uuid missing"),
        (body(uuid="u" * 65), "uuid missing"),
        (body(authy_id="abc"), "authy_id missing or not a number"),
        ([body()], "body is not a JSON object"),
    ],
    ids=str,
)
async def test_a_refused_callback_says_why(app, client, pending, payload: Any, reason: str):
    """The push service's operator (and the audit trail) learn what was wrong."""
    nonce = now_nonce()
    sig = (
        "x"
        if isinstance(payload, list)
        else signature.sign(API_KEY, nonce, "POST", WEBHOOK, payload)
    )
    response = await client.post(
        "/webhooks/authy",
        data=json.dumps(payload),
        headers={
            "Content-Type": "application/json",
            "X-Authy-Signature": sig,
            "X-Authy-Signature-Nonce": nonce,
        },
    )
    assert response.status_code == 400
    assert await response.get_json() == {"status": "rejected", "reason": reason}
    rejections = await count(app, AuditEvent, AuditEvent.event == "webhook.rejected")
    assert rejections == 1


async def test_a_callback_that_is_not_json_says_so(app, client, pending):
    nonce = now_nonce()
    response = await client.post(
        "/webhooks/authy",
        data="authy_id=4242&status=approved&uuid=uuid-1",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Authy-Signature": "x",
            "X-Authy-Signature-Nonce": nonce,
        },
    )
    assert response.status_code == 415
    assert await response.get_json() == {
        "status": "rejected",
        "reason": "expected application/json",
    }

    response = await client.post(
        "/webhooks/authy",
        data=b"{not json",
        headers={
            "Content-Type": "application/json",
            "X-Authy-Signature": "x",
            "X-Authy-Signature-Nonce": nonce,
        },
    )
    assert response.status_code == 400
    assert await response.get_json() == {"status": "rejected", "reason": "body is not JSON"}
    assert await status_of(app, pending) == ChallengeStatus.PENDING


async def _stream(client, size: int) -> Any:
    """POST a genuine callback padded to `size` bytes in 8 KiB chunks, with no length."""
    padded = _padded(size)
    nonce = now_nonce()
    headers = {
        "Content-Type": "application/json",
        "X-Authy-Signature": signature.sign(API_KEY, nonce, "POST", WEBHOOK, json.loads(padded)),
        "X-Authy-Signature-Nonce": nonce,
    }
    async with client.request("/webhooks/authy", method="POST", headers=headers) as connection:
        for start in range(0, size, 8192):
            await connection.send(padded[start : start + 8192])
        await connection.send_complete()
    return await connection.as_response()


async def test_a_callback_streamed_without_a_length_is_measured_as_it_is_read(app, client, pending):
    """With no Content-Length to refuse it up front, the body is measured when read: one
    byte over 64 KiB is refused, exactly 64 KiB is taken."""
    response = await _stream(client, 64 * 1024 + 1)
    assert response.status_code == 413
    assert await response.get_json() == {"status": "rejected", "reason": "body too large"}
    assert await status_of(app, pending) == ChallengeStatus.PENDING

    response = await _stream(client, 64 * 1024)
    assert response.status_code == 200
    assert await status_of(app, pending) == ChallengeStatus.APPROVED
