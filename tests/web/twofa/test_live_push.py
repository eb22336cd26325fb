"""Push login end to end over real sockets: app and emulator as separate Hypercorn servers,
signed callbacks, and the browser told over Socket.IO."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from push2fa.authy import signature
from tests.web.twofa.conftest import API_KEY


async def test_approved_push_logs_the_waiting_browser_in(site, enrolled):
    browser, authy_id = enrolled
    resp = await browser.login("alice", next="/user/alice")
    assert resp.url.path == "/auth/2fa/wait"
    assert "Approve the login on your phone" in browser.last_html
    await browser.connect()
    assert (await browser.next_event("challenge"))["status"] == "pending"

    request = await site.wait_for_request(authy_id)
    assert request["details"]["Username"] == "alice"
    assert set(request["hidden_details"]) == {"challenge", "match_choices"}
    assert browser.match_code() in request["hidden_details"]["match_choices"].split(",")
    # The phone must pick the number: it is not among the details it shows.
    assert "Code" not in request["details"]
    assert browser.match_code() not in request["details"].values()
    started = time.perf_counter()
    decided = await site.decide(request["uuid"], "approved", browser.match_code())
    assert decided["callback_status"] == 200
    await browser.wait_status("challenge", "approved")
    delay_ms = (time.perf_counter() - started) * 1000

    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/user/alice"
    assert "Last seen" in browser.last_html
    # Her enrolment was her first login: this one is greeted as a return.
    assert '<div class="alert alert-success">Welcome back, alice.</div>' in browser.last_html
    print(f"approve → browser event: {delay_ms:.1f} ms (includes the emulator's callback)")


async def test_denied_push_tells_the_page_and_never_logs_in(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await browser.connect()
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "denied")
    await browser.wait_status("challenge", "denied")
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/auth/2fa/wait"
    assert "denied" in browser.last_html
    home = await browser.get("/")
    assert "Hello, alice" not in await home.text()


async def test_decision_made_while_the_page_was_away_arrives_on_reconnect(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())  # no socket connected yet
    await browser.connect()
    assert (await browser.next_event("challenge"))["status"] == "approved"


async def test_duplicate_webhook_logs_in_once(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    body = _callback_body(authy_id, request["uuid"], "approved", browser.match_code())
    first = await _post_callback(site, body, nonce=str(int(time.time())))
    second = await _post_callback(site, body, nonce=str(int(time.time()) + 1))
    assert first == 200 and second == 200
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/"
    await browser.post_form("/auth/2fa/complete", {}, page="/")
    assert await _audit_count(site, "push.consumed") == 1
    assert await _audit_count(site, "push.approved") == 1


async def test_forged_signature_is_rejected_and_changes_nothing(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    body = _callback_body(authy_id, request["uuid"], "approved")
    status = await _post_callback(site, body, nonce=str(int(time.time())), key="wrong-key-000000")
    assert status == 401
    await browser.connect()
    assert (await browser.next_event("challenge"))["status"] == "pending"


async def test_replayed_callback_is_rejected(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    body = _callback_body(authy_id, request["uuid"], "denied")
    nonce = str(int(time.time()))
    assert await _post_callback(site, body, nonce=nonce) == 200
    assert await _post_callback(site, body, nonce=nonce) == 409


async def test_copies_of_one_callback_sent_at_once_decide_once(site, enrolled):
    """Ten copies race through the pool's connections: the nonce's unique key lets one
    in; the others are refused as replays, not answered with a 500."""
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    body = _callback_body(authy_id, request["uuid"], "denied")
    nonce = str(int(time.time()))
    statuses = await asyncio.gather(*(_post_callback(site, body, nonce=nonce) for _ in range(10)))
    assert sorted(statuses) == [200] + [409] * 9
    await browser.connect()
    assert (await browser.next_event("challenge"))["status"] == "denied"


async def test_stale_nonce_is_rejected(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    body = _callback_body(authy_id, request["uuid"], "approved")
    assert await _post_callback(site, body, nonce=str(int(time.time()) - 600)) == 401
    await browser.connect()
    assert (await browser.next_event("challenge"))["status"] == "pending"


async def test_callback_for_another_device_does_not_decide(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    body = _callback_body(authy_id + 1, request["uuid"], "approved")
    assert await _post_callback(site, body, nonce=str(int(time.time()))) == 200
    await browser.connect()
    assert (await browser.next_event("challenge"))["status"] == "pending"


async def test_another_browser_cannot_join_or_complete_the_challenge(site, enrolled, browsers):
    victim, authy_id = enrolled
    await victim.login("alice")
    request = await site.wait_for_request(authy_id)
    attacker = browsers()
    await attacker.register("mallory")
    await attacker.login("mallory")
    await attacker.connect()
    await site.decide(request["uuid"], "approved", victim.match_code())
    await asyncio.sleep(0.3)
    heard = [attacker.events.get_nowait() for _ in range(attacker.events.qsize())]
    assert all(event != "challenge" for event, _ in heard)
    resp = await attacker.post_form("/auth/2fa/complete", {}, page="/")
    assert resp.url.path in {"/auth/login", "/"}
    page = await (await attacker.get("/")).text()
    assert "Hello, mallory" in page


async def test_socket_without_any_session_is_refused(site):
    import socketio

    sock = socketio.AsyncClient(reconnection=False)
    try:
        await sock.connect(site.url, transports=["websocket"])
    except socketio.exceptions.ConnectionError:
        return
    await sock.disconnect()
    raise AssertionError("an anonymous socket was accepted")


async def test_cancel_ends_the_challenge(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await browser.connect()
    await browser.post_form("/auth/2fa/cancel", {}, page="/auth/2fa/wait")
    await browser.wait_status("challenge", "cancelled")
    await site.app.extensions["push2fa"].withdrawer.settle()
    # The cancel took the push off the phone: the phone can no longer approve it.
    status, _ = await site.control(
        "POST", f"/requests/{request['uuid']}", json={"status": "approved"}
    )
    assert status == 409
    assert await site.pending_requests(authy_id) == []


async def test_expired_challenge_is_announced(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await browser.connect()
    svc = site.app.extensions["push2fa"]
    from sqlalchemy import update

    from push2fa.models import LoginChallenge, utcnow

    async with svc.db.session() as db:
        await db.execute(update(LoginChallenge).values(expires_at=utcnow()))
        await db.commit()
    await browser.wait_status("challenge", "expired", timeout=5)


def _callback_body(
    authy_id: int, uuid: str, status: str, picked: str | None = ""
) -> dict[str, Any]:
    return {
        "authy_id": authy_id,
        "uuid": uuid,
        "status": status,
        "callback_action": "approval_request_status",
        "approval_request": {
            "transaction": {"status": status, "uuid": uuid, "reason": picked or ""}
        },
    }


async def _post_callback(site, body: dict[str, Any], nonce: str, key: str = API_KEY) -> int:
    url = f"{site.url}/webhooks/authy"
    sig = signature.sign(key, nonce, "POST", url, body)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url,
            data=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "X-Authy-Signature": sig,
                "X-Authy-Signature-Nonce": nonce,
            },
        ) as resp,
    ):
        return resp.status


async def test_console_test_callback_is_acknowledged_and_ignored(site):
    body = _callback_body(1234, "00000000-test", "approved")
    assert await _post_callback(site, body, nonce=str(int(time.time()))) == 200
    assert await _audit_count(site, "push.approved") == 0


async def test_malformed_callbacks_get_4xx_and_change_nothing(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    url = f"{site.url}/webhooks/authy"
    good = _callback_body(authy_id, request["uuid"], "approved")
    cases = [  # (content type, raw body, what is signed, expected status)
        ("application/json", b"{not json", {}, 400),
        ("application/json", b"[1, 2]", {}, 400),
        ("text/plain", json.dumps(good).encode(), good, 415),
        (
            "application/json",
            json.dumps({"authy_id": "x", "uuid": 5}).encode(),
            {"authy_id": "x", "uuid": 5},
            400,
        ),
        (
            "application/json",
            json.dumps({**good, "status": "maybe"}).encode(),
            {**good, "status": "maybe"},
            400,
        ),
        ("application/json", b"x" * 300_000, {}, 413),
    ]
    async with aiohttp.ClientSession() as http:
        for i, (content_type, raw, signed, expected) in enumerate(cases):
            nonce = str(int(time.time()) + i)
            headers = {
                "Content-Type": content_type,
                "X-Authy-Signature": signature.sign(API_KEY, nonce, "POST", url, signed),
                "X-Authy-Signature-Nonce": nonce,
            }
            async with http.post(url, data=raw, headers=headers) as resp:
                assert resp.status == expected, (raw[:40], resp.status)
        async with http.post(
            url, data=json.dumps(good), headers={"Content-Type": "application/json"}
        ) as resp:
            assert resp.status == 401  # no signature at all
    await browser.connect()
    assert (await browser.next_event("challenge"))["status"] == "pending"


async def test_remember_me_and_next_survive_the_push_step(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice", remember="y", next="/profile/edit")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/profile/edit"
    auth = [c for c in browser.http.cookie_jar if c.key == "push2fa_auth"]
    assert auth and auth[0]["max-age"], "remember me should make the login cookie persistent"


async def test_unsafe_next_is_dropped_through_the_push_step(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice", next="//evil.example/")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.host == "127.0.0.1" and resp.url.path == "/"


async def test_resend_cancels_the_old_push_and_sends_a_new_one(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    first = await site.wait_for_request(authy_id)
    await browser.connect()
    svc = site.app.extensions["push2fa"]
    from sqlalchemy import update

    from push2fa.models import LoginChallenge, utcnow

    async with svc.db.session() as db:  # pretend the first push is 11 s old
        await db.execute(
            update(LoginChallenge).values(
                created_at=utcnow() - __import__("datetime").timedelta(seconds=11)
            )
        )
        await db.commit()
    await browser.post_form("/auth/2fa/resend", {}, page="/auth/2fa/wait")
    assert "A new request has been sent" in browser.last_html
    await browser.wait_status("challenge", "cancelled")
    pending = await site.pending_requests(authy_id)
    newest = [r for r in pending if r["uuid"] != first["uuid"]]
    assert newest, "no new push was sent"
    await site.app.extensions["push2fa"].withdrawer.settle()
    status, _ = await site.control(  # the replaced push left the phone: it cannot count
        "POST", f"/requests/{first['uuid']}", json={"status": "approved"}
    )
    assert status == 409
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/auth/2fa/wait"
    await site.decide(newest[-1]["uuid"], "approved", browser.match_code())
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/"


async def test_resend_too_soon_is_refused(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await site.wait_for_request(authy_id)
    await browser.post_form("/auth/2fa/resend", {}, page="/auth/2fa/wait")
    assert "Please wait" in browser.last_html
    assert len(await site.pending_requests(authy_id)) == 1


async def test_disable_right_after_a_push_login_removes_the_device(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    await browser.get("/auth/2fa/disable")
    assert 'id="disable-now"' in browser.last_html  # the push just given is fresh
    await browser.post_form("/auth/2fa/disable", {})
    assert "now off" in browser.last_html
    await browser.logout()
    resp = await browser.login("alice")
    assert resp.url.path == "/"  # no push step any more
    status, _ = await site.control("GET", f"/devices/{authy_id}/requests")
    assert status == 404  # the emulator forgot the device


async def test_disable_with_an_approved_push(site, enrolled):
    browser, authy_id = enrolled
    await _age_second_factor(site, browser, authy_id)
    await browser.get("/auth/2fa/disable")
    assert 'id="disable-with-phone"' in browser.last_html
    resp = await browser.post_form("/auth/2fa/disable", {})
    assert resp.url.path == "/auth/2fa/wait"
    request = await site.wait_for_request(authy_id)
    assert request["message"].startswith("Turn off")
    await site.decide(request["uuid"], "approved", browser.match_code())
    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path == "/"
    assert (
        '<div class="alert alert-success">Push two-factor login is now off.</div>'
        in browser.last_html
    )
    assert await _turned_off_with(site) == ["push"]
    # The spent request is let go: no waiting page for it any more.
    assert (await browser.get("/auth/2fa/wait")).url.path != "/auth/2fa/wait"


async def _turned_off_with(site) -> list[str]:
    """The second factor each turning-off of 2FA was recorded as proved by."""
    from sqlalchemy import select

    from push2fa.models import AuditEvent

    async with site.app.extensions["push2fa"].db.session() as db:
        rows = await db.execute(select(AuditEvent).where(AuditEvent.event == "twofa.disabled"))
        return [event.details.get("proof") for event in rows.scalars()]


async def _age_second_factor(site, browser, authy_id) -> None:
    """Log in through a trusted browser (no second factor in this session) on an account
    enrolled long ago: nothing in the session counts as a fresh second factor."""
    from datetime import timedelta

    from sqlalchemy import update

    from push2fa.models import User, utcnow

    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    await browser.post_form("/auth/2fa/complete", {"trust": "y"}, page="/auth/2fa/wait")
    await browser.logout()
    async with site.app.extensions["push2fa"].db.session() as db:
        await db.execute(update(User).values(push_enabled_at=utcnow() - timedelta(hours=1)))
        await db.commit()
    resp = await browser.login("alice")
    assert resp.url.path == "/"  # the trusted browser: logged in without a push


async def _audit_count(site, event: str) -> int:
    from sqlalchemy import func, select

    from push2fa.models import AuditEvent

    async with site.app.extensions["push2fa"].db.session() as db:
        return int(
            (await db.execute(select(func.count()).where(AuditEvent.event == event))).scalar_one()
        )


async def test_an_approved_turn_off_push_does_nothing_once_the_login_has_ended(site, enrolled):
    """Turning 2FA off must be completed by the logged-in user who asked. If that login
    ended meanwhile (every session ended from another device), the approval the phone gives
    afterwards turns nothing off in the browser left behind."""
    from sqlalchemy import select, update

    from push2fa.models import User, UserSession, utcnow

    browser, authy_id = enrolled
    await _age_second_factor(site, browser, authy_id)
    await browser.post_form("/auth/2fa/disable", {}, page="/auth/2fa/disable")
    request = await site.wait_for_request(authy_id)
    async with site.app.extensions["push2fa"].db.session() as db:
        await db.execute(update(UserSession).values(ended_at=utcnow()))
        await db.commit()
    await site.decide(request["uuid"], "approved", browser.match_code())

    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")

    assert resp.status == 200 and resp.url.path == "/auth/login"
    async with site.app.extensions["push2fa"].db.session() as db:
        assert (await db.execute(select(User))).scalar_one().push_enabled


async def test_the_waiting_and_enrolment_pages_are_kept_by_no_cache(site, enrolled, browsers):
    """The waiting page (the number to pick) and the enrolment page (the token that
    registers a phone) tell every cache, HTTP/1.0 ones too, not to keep them."""
    alice, _ = enrolled
    waiting = await alice.login("alice")
    bob = browsers()
    await bob.register("bob")
    await bob.login("bob")
    enrolling = await bob.post_form("/auth/2fa/enable", {}, page="/auth/2fa/enable")
    assert waiting.url.path == "/auth/2fa/wait" and enrolling.url.path == "/auth/2fa/enroll"

    for page in (waiting, enrolling):
        directives = {d.strip().lower() for d in page.headers["Cache-Control"].split(",")}
        assert "no-store" in directives, page.url.path
        assert page.headers.get("Pragma", "").lower() == "no-cache", page.url.path
