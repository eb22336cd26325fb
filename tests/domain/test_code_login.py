"""Answering a login challenge with a code, called directly: the cases a live login cannot
reach or cannot set up (no phone on the account, the push service unreachable)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete

from push2fa.domain import challenges, code_login
from push2fa.domain import recovery_codes as recovery
from push2fa.models import ChallengeStatus, LoginChallenge, User


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    # Nothing listens on the discard port: every call to the push service fails to connect.
    return {**overrides, "emulator_url": "http://127.0.0.1:9/_emulator"}


async def _login_waiting(db, authy_id: int | None) -> tuple[User, LoginChallenge]:
    user = User(username="dana", email="dana@example.com", password_hash="x", authy_id=authy_id)
    db.add(user)
    await db.commit()
    context = challenges.Context("1.2.3.4", "UA")
    challenge = await challenges.create(db, user, context, 120, push=authy_id is not None)
    return user, challenge


async def _after(db, user: User, challenge: LoginChallenge) -> tuple[int, str]:
    fresh_user = await db.get(User, user.id, populate_existing=True)
    fresh = await db.get(LoginChallenge, challenge.id, populate_existing=True)
    return fresh_user.failed_attempts, fresh.status


async def test_an_app_code_the_push_service_cannot_check_is_neither_right_nor_wrong(app):
    """The push service is down: the login waits, no failure is counted against the
    user, and the page can say why (the service's own words)."""
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        user, challenge = await _login_waiting(db, authy_id=11)
        answer = await code_login.answer(db, svc, challenge, user, code_login.APP_CODE, "123456")
        assert answer.consumed is None
        assert answer.problem == code_login.UNAVAILABLE
        assert answer.detail == "could not reach Authy (ClientConnectorError)"
        assert await _after(db, user, challenge) == (0, ChallengeStatus.PENDING)


async def test_an_app_code_for_an_account_without_a_phone_is_refused(app):
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        user, challenge = await _login_waiting(db, authy_id=None)
        answer = await code_login.answer(db, svc, challenge, user, code_login.APP_CODE, "123456")
        assert (answer.consumed, answer.problem) == (None, code_login.GONE)
        assert await _after(db, user, challenge) == (0, ChallengeStatus.PENDING)


async def test_a_code_for_a_challenge_deleted_meanwhile_is_refused_and_not_spent(app):
    """The challenge row went away while the code was on its way (pruned): nothing to log
    in to, so the answer is "gone" and the recovery code stays unspent."""
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        user, challenge = await _login_waiting(db, authy_id=11)
        codes = await recovery.regenerate(db, svc.settings, user.id)
        await db.execute(delete(LoginChallenge).where(LoginChallenge.id == challenge.id))
        await db.commit()
        answer = await code_login.answer(db, svc, challenge, user, code_login.RECOVERY, codes[0])
        assert (answer.consumed, answer.problem) == (None, code_login.GONE)
        assert await recovery.remaining(db, user.id) == len(codes)


async def test_a_code_for_a_challenge_already_ended_says_how_it_stands(app):
    """The login was cancelled before the code arrived: no login, no failure, the code
    unspent, and the challenge as it stands, for the page to say why."""
    svc = app.extensions["push2fa"]
    async with svc.db.session() as db:
        user, challenge = await _login_waiting(db, authy_id=11)
        codes = await recovery.regenerate(db, svc.settings, user.id)
        await challenges.cancel(db, svc.realtime, challenge.id, by="browser")
        answer = await code_login.answer(db, svc, challenge, user, code_login.RECOVERY, codes[0])
        assert (answer.consumed, answer.problem) == (None, code_login.GONE)
        assert answer.current is not None and answer.current.status == ChallengeStatus.CANCELLED
        assert await _after(db, user, challenge) == (0, ChallengeStatus.CANCELLED)
        assert await recovery.remaining(db, user.id) == len(codes)
