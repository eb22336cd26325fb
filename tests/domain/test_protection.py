"""'This wasn't me' called directly: what an attacker holds ends at once (pending pushes,
trusted browsers, the password), only for the reporting account. That every session ends
is covered by tests/web/account/test_sessions.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from push2fa.domain import challenges, protection, trusted_browsers
from push2fa.models import ChallengeStatus, LoginChallenge, User
from tests.web.auth.mailbox import body_of, parse_mail
from tests.web.auth.rows import audit_events

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
        ended = await db.get(LoginChallenge, danas_push.id)
        assert (ended.status, ended.reason, ended.decided_by) == (
            ChallengeStatus.CANCELLED,
            "reported",
            "server",
        )
        assert (await db.get(LoginChallenge, erins_push.id)).status == ChallengeStatus.PENDING
        assert await trusted_browsers.check(db, svc.settings, dana, danas_cookie) is None
        assert await trusted_browsers.check(db, svc.settings, erin, erins_cookie) is not None
        reported = await db.get(User, dana.id)
        assert reported.must_change_password and reported.push_blocked_until is not None
        bystander = await db.get(User, erin.id)
        assert not bystander.must_change_password and bystander.push_blocked_until is None
    # The account's security history says it was reported, and how (phone or mail link).
    reports = await audit_events(app, "push.reported")
    assert [(e.user_id, e.details) for e in reports] == [(dana.id, {"source": "test"})]


# --- the consecutive-failure lock -----------------------------------------------------------


async def _state(db, user_id: int) -> tuple[int, bool]:
    user = await db.get(User, user_id, populate_existing=True)
    return user.failed_attempts, user.second_factor_locked_at is not None


async def _fail(svc, user_id: int, times: int) -> list[bool]:
    locked = []
    for _ in range(times):
        async with svc.db.session() as db:
            locked.append(
                await protection.record_failure(db, svc.settings, user_id, "totp", svc.realtime)
            )
    return locked


async def _lock_notices(svc) -> list[str]:
    await asyncio.gather(*list(protection._mail_tasks))
    outbox = Path(svc.settings.instance_path) / "outbox"
    files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
    return [
        f"To: {m['To']}\nSubject: {m['Subject']}\n{body_of(m)}"
        for m in (parse_mail(p.read_bytes()) for p in files)
    ]


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return {**overrides, "max_failed_attempts": 3}


async def test_the_lock_closes_at_the_limit_of_consecutive_failures_not_before(app):
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        dana, danas_push, _ = await _account(db, svc.settings, "dana", 11)
        erin, erins_push, _ = await _account(db, svc.settings, "erin", 12)

    assert await _fail(svc, dana.id, 2) == [False, False]
    async with svc.db.session() as db:
        assert await _state(db, dana.id) == (2, False)
        assert (await db.get(LoginChallenge, danas_push.id)).status == ChallengeStatus.PENDING
    assert await _lock_notices(svc) == []

    # The third failure in a row locks, and says so once; a fourth finds it already locked.
    assert await _fail(svc, dana.id, 2) == [True, False]
    async with svc.db.session() as db:
        assert await _state(db, dana.id) == (4, True)
        # Locking ends the pushes waiting on the phone: none can be approved any more.
        ended = await db.get(LoginChallenge, danas_push.id)
        assert (ended.status, ended.reason, ended.decided_by) == (
            ChallengeStatus.CANCELLED,
            "locked",
            "server",
        )
        # Another account is untouched.
        assert await _state(db, erin.id) == (0, False)
        assert (await db.get(LoginChallenge, erins_push.id)).status == ChallengeStatus.PENDING
    # The history records the lock once, with the limit that closed it, and every failure.
    locks = await audit_events(app, "twofa.locked")
    assert [(e.user_id, e.details) for e in locks] == [(dana.id, {"after": 3})]
    failures = await audit_events(app, "auth.failure")
    assert [(e.user_id, e.details) for e in failures] == [(dana.id, {"kind": "totp"})] * 4


async def test_the_owner_is_told_by_mail_when_the_lock_closes_and_how_to_get_back_in(app):
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        dana, _, _ = await _account(db, svc.settings, "dana", 11)
    await _fail(svc, dana.id, 3)

    notices = await _lock_notices(svc)
    assert len(notices) == 1
    assert "To: dana@example.com" in notices[0]
    assert "Subject: Two-factor login locked on your push2fa account" in notices[0]
    # What happened, what it means, and the two ways back in, as the owner reads them.
    assert (
        "Hello dana,\n\nAfter 3 failed second-factor attempts in a row (denied pushes, "
        "wrong numbers or wrong codes), two-factor login for your account is locked: no more "
        "pushes or app codes are accepted. If this was not you, someone knows your password: "
        "change it.\n\nTo get back in, log in with a recovery code, or reset your password: "
        f"{svc.settings.public_url}/auth/reset\n"
    ) in notices[0]
    await asyncio.sleep(0)
    assert not protection._mail_tasks, "a sent notice's task is let go, not kept for ever"


async def test_a_second_factor_login_starts_the_count_over_and_lifts_the_lock(app):
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        dana, _, _ = await _account(db, svc.settings, "dana", 11)
        erin, _, _ = await _account(db, svc.settings, "erin", 12)
    await _fail(svc, dana.id, 2)
    await _fail(svc, erin.id, 3)
    async with svc.db.session() as db:
        await db.execute(update(User).values(pushes_since_login=5))
        await protection.record_success(db, dana.id)
        await db.commit()
        # Two more failures after a success are not three in a row.
        assert await _fail(svc, dana.id, 2) == [False, False]
        assert await _state(db, dana.id) == (2, False)
        assert (await db.get(User, dana.id)).pushes_since_login == 0

        await protection.record_success(db, erin.id)
        await db.commit()
        assert await _state(db, erin.id) == (0, False)
        # Only the account that logged in starts over.
        assert (await db.get(User, dana.id, populate_existing=True)).failed_attempts == 2


async def test_a_failure_locks_only_its_own_account(app):
    """erin is past the limit but unlocked (counted under a higher limit, since lowered):
    dana's wrong code must neither lock erin nor be taken for a lock of dana's own."""
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        dana, danas_push, _ = await _account(db, svc.settings, "dana", 11)
        erin, _, _ = await _account(db, svc.settings, "erin", 12)
        await db.execute(update(User).where(User.id == erin.id).values(failed_attempts=5))
        await db.commit()

    assert await _fail(svc, dana.id, 1) == [False]

    async with svc.db.session() as db:
        assert await _state(db, dana.id) == (1, False)
        assert await _state(db, erin.id) == (5, False)
        assert (await db.get(LoginChallenge, danas_push.id)).status == ChallengeStatus.PENDING
    assert await _lock_notices(svc) == []
