"""Completing a push login (POST /auth/2fa/complete): it consumes the challenge bound to
THIS browser's session, never another approved challenge of the same account."""

from __future__ import annotations


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
