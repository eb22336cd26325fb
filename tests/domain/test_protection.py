"""'This wasn't me' called directly: what an attacker holds ends at once (pending pushes,
trusted browsers, the password), only for the reporting account. That every session ends
is covered by tests/web/account/test_sessions.py."""

from __future__ import annotations

from push2fa.domain import challenges, protection, trusted_browsers
from push2fa.models import ChallengeStatus, LoginChallenge, User

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


async def _account(db, settings, name: str, authy_id: int):
    user = User(username=name, email=f"{name}@example.com", password_hash="x", authy_id=authy_id)
    db.add(user)
    await db.commit()
    push = await challenges.create(db, user, challenges.Context("1.2.3.4", "UA"), 120)
    cookie = await trusted_browsers.issue(db, settings, user, "1.2.3.4", CHROME)
    return user, push, cookie


async def test_this_wasnt_me_ends_other_pushes_and_trusted_browsers(app):
    svc = app.extensions["push2fa"]
    for task in svc.tasks:
        task.cancel()
    async with svc.db.session() as db:
        dana, danas_push, danas_cookie = await _account(db, svc.settings, "dana", 11)
        erin, erins_push, erins_cookie = await _account(db, svc.settings, "erin", 12)
        await protection.report_not_me(db, svc.settings, svc.realtime, dana.id, source="test")
    async with svc.db.session() as db:
        assert (await db.get(LoginChallenge, danas_push.id)).status == ChallengeStatus.CANCELLED
        assert (await db.get(LoginChallenge, erins_push.id)).status == ChallengeStatus.PENDING
        assert await trusted_browsers.check(db, svc.settings, dana, danas_cookie) is None
        assert await trusted_browsers.check(db, svc.settings, erin, erins_cookie) is not None
        reported = await db.get(User, dana.id)
        assert reported.must_change_password and reported.push_blocked_until is not None
        bystander = await db.get(User, erin.id)
        assert not bystander.must_change_password and bystander.push_blocked_until is None
