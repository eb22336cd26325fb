"""Completing a push login (POST /auth/2fa/complete): it consumes the challenge bound to
THIS browser's session, never another approved challenge of the same account; and, like
cancel and resend, only with the form's CSRF token. A completion that cannot log in says
why, on the waiting page."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from push2fa.domain import challenges
from push2fa.models import LoginChallenge, User, utcnow


async def test_completion_uses_the_challenge_bound_to_this_session(site, enrolled, browsers):
    owner, authy_id = enrolled
    attacker = browsers()  # knows alice's password, not her phone
    await attacker.login("alice")
    assert attacker.match_code() is not None
    first = await site.wait_for_request(authy_id)

    await owner.login("alice")
    requests = await site.pending_requests(authy_id)
    own = next(r for r in requests if r["uuid"] != first["uuid"])
    decided = await site.decide(own["uuid"], "approved", owner.match_code())
    assert decided["callback_status"] == 200

    resp = await attacker.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert resp.url.path != "/"
    assert "Hello, alice" not in await (await attacker.get("/")).text()

    resp = await owner.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert "Hello, alice" in await (await owner.get("/")).text()


async def _post_without_token(browser, path: str, token: str | None = None) -> None:
    data = {} if token is None else {"csrf_token": token}
    resp = await browser.http.post(browser.site.url + path, data=data)
    browser.last_html = await resp.text()


async def test_complete_without_csrf_token_does_not_log_in(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    await site.decide(request["uuid"], "approved", browser.match_code())
    await _post_without_token(browser, "/auth/2fa/complete")
    await _post_without_token(browser, "/auth/2fa/complete", token="forged")
    assert "Hello, alice" not in await (await browser.get("/")).text()
    await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")
    assert "Hello, alice" in await (await browser.get("/")).text()


async def test_cancel_without_csrf_token_leaves_the_push_pending(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await site.wait_for_request(authy_id)
    await _post_without_token(browser, "/auth/2fa/cancel")
    await browser.connect()
    assert (await browser.next_event("challenge"))["status"] == "pending"


async def test_resend_without_csrf_token_sends_nothing(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await site.wait_for_request(authy_id)
    async with site.app.extensions["push2fa"].db.session() as db:  # past the resend pause
        await db.execute(update(LoginChallenge).values(created_at=utcnow() - timedelta(minutes=1)))
        await db.commit()
    await _post_without_token(browser, "/auth/2fa/resend")
    async with site.app.extensions["push2fa"].db.session() as db:
        assert (await db.execute(select(func.count(LoginChallenge.id)))).scalar() == 1


def _warning(text: str) -> str:
    return f'<div class="alert alert-warning">{text}</div>'


async def test_completing_before_the_phone_answers_says_it_has_not_approved(site, enrolled):
    browser, authy_id = enrolled
    await browser.login("alice")
    await site.wait_for_request(authy_id)

    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")

    assert resp.url.path == "/auth/2fa/wait"
    assert _warning("Your phone has not approved this login yet.") in browser.last_html
    assert "Hello, alice" not in await (await browser.get("/")).text()


async def test_completing_an_expired_request_says_it_expired(site, enrolled):
    browser, _ = enrolled
    await browser.login("alice")
    svc = site.app.extensions["push2fa"]
    async with svc.db.session() as db:
        await db.execute(update(LoginChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
        await db.commit()
        assert await challenges.expire_due(db, svc.realtime)

    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")

    assert resp.url.path == "/auth/2fa/wait"
    assert _warning("The request expired. Send a new one.") in browser.last_html
    assert "Hello, alice" not in await (await browser.get("/")).text()


async def test_an_approval_not_used_in_time_logs_nobody_in_and_says_so(site, enrolled):
    """The phone approved, but the browser came back only after the request's time and the
    grace after the approval had both run out: the approval is no longer a login."""
    browser, authy_id = enrolled
    await browser.login("alice")
    request = await site.wait_for_request(authy_id)
    decided = await site.decide(request["uuid"], "approved", browser.match_code())
    assert decided["callback_status"] == 200
    long_ago = utcnow() - challenges.COMPLETE_GRACE - timedelta(seconds=1)
    async with site.app.extensions["push2fa"].db.session() as db:
        await db.execute(update(LoginChallenge).values(expires_at=long_ago, decided_at=long_ago))
        await db.commit()

    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")

    assert resp.url.path == "/auth/2fa/wait"
    assert _warning("This request cannot be used.") in browser.last_html
    assert "Hello, alice" not in await (await browser.get("/")).text()


async def test_completing_a_request_the_lock_ended_says_it_was_cancelled(site, enrolled):
    """The wrong code that locks the second factor also ends the push the page waits on: a
    completion afterwards (an approval that came too late) says it was cancelled."""
    browser, _ = enrolled
    svc = site.app.extensions["push2fa"]
    async with svc.db.session() as db:
        await db.execute(update(User).values(failed_attempts=svc.settings.max_failed_attempts - 1))
        await db.commit()
    await browser.login("alice")
    await browser.post_form("/auth/2fa/totp", {"code": "0000000"}, page="/auth/2fa/wait")

    resp = await browser.post_form("/auth/2fa/complete", {}, page="/auth/2fa/wait")

    assert resp.url.path == "/auth/2fa/wait"
    assert _warning("The request was cancelled.") in browser.last_html
    assert "Hello, alice" not in await (await browser.get("/")).text()
