"""Completing a push login (POST /auth/2fa/complete): it consumes the challenge bound to
THIS browser's session, never another approved challenge of the same account; and, like
cancel and resend, only with the form's CSRF token."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from push2fa.models import LoginChallenge, utcnow


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
