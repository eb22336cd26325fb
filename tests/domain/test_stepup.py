"""Sensitive changes called directly, inside a request: on an account with push 2FA the
password alone changes nothing (a fresh second factor in this very session is needed); a
refused change changes nothing; a done change ends what others hold (sessions, trusted
browsers, recovery codes) for that account only. The live flows are
tests/web/account/test_live_stepup.py and tests/web/auth/test_password_reset.py."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from quart import g, session
from quart_auth import current_user
from sqlalchemy import select

from push2fa.domain import push_budget, recovery_codes, sessions, stepup, trusted_browsers
from push2fa.domain.login_flow import SESSION_KEY
from push2fa.domain.passwords import hash_password, verify_password
from push2fa.models import (
    AuditEvent,
    ChallengePurpose,
    ChallengeStatus,
    LoginChallenge,
    User,
    UserSession,
    utcnow,
)
from push2fa.services import Services
from tests.domain.rows import account, events
from tests.web.auth.mailbox import sent_mail

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
OLD = "old password 123"
NEW = "new password 456"


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port held but never listening: the push service is down, every time."""
    held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    held.bind(("127.0.0.1", 0))
    yield held.getsockname()[1]
    held.close()


@pytest.fixture
def overrides(overrides: dict[str, Any], refused_port: int) -> dict[str, Any]:
    return {**overrides, "emulator_url": f"http://127.0.0.1:{refused_port}/_emulator"}


pytestmark = pytest.mark.usefixtures("background_stopped")


async def add_user(svc: Services, name: str, *, push: bool = True, **values: Any) -> User:
    async with svc.db.session() as db:
        person = User(
            username=name,
            email=f"{name}@example.com",
            password_hash=await hash_password(OLD, svc.settings.bcrypt_rounds),
            authy_id=100 + len(name) if push else None,
            push_enabled_at=utcnow() - timedelta(days=3) if push else None,
            **values,
        )
        db.add(person)
        await db.commit()
        return person


@asynccontextmanager
async def request(app, svc: Services) -> AsyncIterator[Any]:
    """A request from this browser, with a database session for the domain call."""
    context = app.test_request_context(
        "/account/security", method="POST", headers={"User-Agent": CHROME}
    )
    async with context, svc.db.session() as db:
        yield db


async def live_sessions(svc: Services, user: User) -> list[int]:
    async with svc.db.session() as db:
        rows = await db.execute(
            select(UserSession.id).where(
                UserSession.user_id == user.id, UserSession.ended_at.is_(None)
            )
        )
        return sorted(rows.scalars())


async def what_others_hold(svc: Services, user: User) -> tuple[list[int], str, list[str]]:
    """Two sessions, a trusted browser and recovery codes of `user`."""
    async with svc.db.session() as db:
        for _ in range(2):
            await sessions.create(db, user, remember=False, ip="192.0.2.9", user_agent=CHROME)
        await db.commit()
        cookie = await trusted_browsers.issue(db, svc.settings, user, "192.0.2.9", CHROME)
        codes = await recovery_codes.regenerate(db, svc.settings, user.id)
    return await live_sessions(svc, user), cookie, codes


async def still_trusted(svc: Services, user: User, cookie: str) -> bool:
    async with svc.db.session() as db:
        person = await db.get(User, user.id)
        assert person is not None
        return await trusted_browsers.check(db, svc.settings, person, cookie) is not None


async def unrevoked_browsers(svc: Services, user: User) -> int:
    """Trusted browsers still listed as such (the security page's list, and what revoking
    records even where a later check would refuse the cookie for another reason)."""
    async with svc.db.session() as db:
        return len(await trusted_browsers.listed(db, user.id))


async def ended_reasons(svc: Services, ids: list[int]) -> set[str | None]:
    """Why these sessions ended, as the sessions page and the history tell it."""
    async with svc.db.session() as db:
        rows = await db.execute(select(UserSession.ended_reason).where(UserSession.id.in_(ids)))
        return set(rows.scalars())


async def mailed(app, user: User) -> list[str]:
    """The subjects of the mail sent to `user`, oldest first."""
    return [m["Subject"] for m in await sent_mail(app) if m["To"] == user.email]


async def details_of(svc: Services, user: User, event: str) -> list[dict[str, Any]]:
    async with svc.db.session() as db:
        rows = await db.execute(
            select(AuditEvent.details).where(
                AuditEvent.user_id == user.id, AuditEvent.event == event
            )
        )
        return list(rows.scalars())


async def codes_left(svc: Services, user: User) -> int:
    async with svc.db.session() as db:
        return await recovery_codes.remaining(db, user.id)


# --- when a second factor is needed ---------------------------------------------------------


async def test_an_account_without_push_needs_no_second_factor(app, svc):
    dana = await add_user(svc, "dana", push=False)
    async with request(app, svc):
        assert not stepup.needs_second_factor(dana)


async def test_with_push_the_password_alone_is_not_enough(app, svc):
    dana = await add_user(svc, "dana")
    async with request(app, svc):
        assert stepup.needs_second_factor(dana)


async def test_a_second_factor_just_given_in_this_session_is_enough(app, svc):
    dana = await add_user(svc, "dana")
    async with request(app, svc):
        sessions.mark_fresh()
        assert not stepup.needs_second_factor(dana)
    async with request(app, svc):  # another browser's session has no such mark
        assert stepup.needs_second_factor(dana)


async def test_a_phone_added_minutes_ago_counts_as_a_fresh_second_factor(app, svc):
    dana = await add_user(svc, "dana")
    dana.push_enabled_at = utcnow() - timedelta(minutes=1)
    async with request(app, svc):
        assert not stepup.needs_second_factor(dana)


@pytest.mark.parametrize("mark", ["old", "9999999999", None, [1], {"t": 1}])
async def test_an_old_or_tampered_freshness_mark_is_not_enough(app, svc, mark):
    dana = await add_user(svc, "dana")
    if mark == "old":
        mark = (utcnow() - sessions.FRESH_FOR - timedelta(seconds=1)).timestamp()
    async with request(app, svc):
        session[sessions.FRESH_KEY] = mark
        assert stepup.needs_second_factor(dana)


# --- changing the password --------------------------------------------------------------------


async def test_a_password_change_without_a_second_factor_changes_nothing(app, svc):
    dana = await add_user(svc, "dana")
    held, cookie, _ = await what_others_hold(svc, dana)
    async with request(app, svc) as db:
        with pytest.raises(stepup.SecondFactorNeeded):
            await stepup.change_password(db, svc.settings, dana, OLD, NEW)
    assert await verify_password(OLD, (await account(svc, dana)).password_hash, 4)
    assert await live_sessions(svc, dana) == held
    assert await still_trusted(svc, dana, cookie)


NOT_CURRENT = "That is not your current password."
SAME = "Choose a password different from your current one."


@pytest.mark.parametrize(
    ("current", "new", "field", "message"),
    [
        ("wrong password 1", NEW, "current", NOT_CURRENT),
        ("", NEW, "current", NOT_CURRENT),
        # Longer than any password can be (the form takes 1024 characters): wrong, not a crash.
        (OLD + "x" * 100, NEW, "current", NOT_CURRENT),
        (OLD, OLD, "password", SAME),
    ],
)
async def test_a_refused_password_change_says_why_and_changes_nothing(
    app, svc, current, new, field, message
):
    dana = await add_user(svc, "dana", must_change_password=True)
    held, cookie, _ = await what_others_hold(svc, dana)
    async with request(app, svc) as db:
        sessions.mark_fresh()
        problem = await stepup.change_password(db, svc.settings, dana, current, new)
    assert problem == stepup.FormProblem(field, message)
    user = await account(svc, dana)
    assert await verify_password(OLD, user.password_hash, 4) and user.must_change_password
    assert await live_sessions(svc, dana) == held
    assert await still_trusted(svc, dana, cookie)
    assert "password.changed" not in await events(svc, dana)
    assert await mailed(app, dana) == []


async def test_a_password_change_ends_what_others_hold_of_that_account_only(app, svc):
    dana, erin = await add_user(svc, "dana", must_change_password=True), await add_user(svc, "erin")
    held, cookie, _ = await what_others_hold(svc, dana)
    erins_sessions, erins_cookie, _ = await what_others_hold(svc, erin)
    async with request(app, svc) as db:
        sessions.mark_fresh()
        g.login = await db.get(UserSession, held[0])
        assert await stepup.change_password(db, svc.settings, dana, OLD, NEW) is None
        bound = session[sessions.BOUND_KEY]
    user = await account(svc, dana)
    assert await verify_password(NEW, user.password_hash, 4)
    assert not await verify_password(OLD, user.password_hash, 4)
    assert not user.must_change_password and user.password_changed_at is not None
    assert await live_sessions(svc, dana) == [bound] and bound not in held
    assert await ended_reasons(svc, held) == {"password_changed"}
    assert not await still_trusted(svc, dana, cookie)
    assert await unrevoked_browsers(svc, dana) == 0
    assert "password.changed" in await events(svc, dana)
    assert await live_sessions(svc, erin) == erins_sessions
    assert await unrevoked_browsers(svc, erin) == 1 and await still_trusted(svc, erin, erins_cookie)
    assert await mailed(app, dana) == ["Your password was changed on your push2fa account"]
    assert await mailed(app, erin) == []


@pytest.mark.parametrize("remember", [True, False])
async def test_after_a_password_change_this_browser_carries_on_logged_in(app, svc, remember):
    """On a new session, remembered only if the one it replaces was."""
    dana = await add_user(svc, "dana")
    async with svc.db.session() as db:
        old, _ = await sessions.create(db, dana, remember=remember, ip="", user_agent=CHROME)
        await db.commit()
    async with request(app, svc) as db:
        sessions.mark_fresh()
        g.login = old
        assert await stepup.change_password(db, svc.settings, dana, OLD, NEW) is None
        new = sessions.current()
        assert new is not None and new.id != old.id and g.user is dana
        assert new.remember is remember and session.permanent is remember
        live = await sessions.resolve(
            db, svc.settings, current_user.auth_id, session[sessions.BOUND_KEY]
        )
        assert live is not None and live.record.id == new.id
    assert await live_sessions(svc, dana) == [new.id]


async def test_a_password_change_from_no_session_is_not_remembered(app, svc):
    dana = await add_user(svc, "dana", push=False)
    async with request(app, svc) as db:
        assert await stepup.change_password(db, svc.settings, dana, OLD, NEW) is None
        new = sessions.current()
        assert new is not None and not new.remember and not session.permanent


async def test_without_push_the_current_password_is_enough_to_change_it(app, svc):
    dana = await add_user(svc, "dana", push=False)
    async with request(app, svc) as db:
        assert await stepup.change_password(db, svc.settings, dana, OLD, NEW) is None
    assert await verify_password(NEW, (await account(svc, dana)).password_hash, 4)


# --- resetting the password by e-mail -------------------------------------------------------


async def test_a_reset_ends_every_session_and_the_lock_of_that_account_only(app, svc):
    locked: dict[str, Any] = {"failed_attempts": 7, "second_factor_locked_at": utcnow()}
    dana = await add_user(svc, "dana", must_change_password=True, **locked)
    erin = await add_user(svc, "erin", **locked)
    held, _, _ = await what_others_hold(svc, dana)
    erins_sessions, erins_cookie, _ = await what_others_hold(svc, erin)
    async with request(app, svc) as db:
        await stepup.reset_password(db, svc.settings, dana, NEW)
    user = await account(svc, dana)
    assert await verify_password(NEW, user.password_hash, 4)
    assert (user.failed_attempts, user.second_factor_locked_at) == (0, None)
    assert not user.must_change_password
    assert await live_sessions(svc, dana) == []
    assert await ended_reasons(svc, held) == {"password_reset"}
    assert "password.reset" in await events(svc, dana)
    bystander = await account(svc, erin)
    assert bystander.failed_attempts == 7 and bystander.second_factor_locked_at is not None
    assert await verify_password(OLD, bystander.password_hash, 4)
    assert await live_sessions(svc, erin) == erins_sessions
    assert await unrevoked_browsers(svc, erin) == 1 and await still_trusted(svc, erin, erins_cookie)


async def test_a_reset_forgets_trusted_browsers_as_a_password_change_does(app, svc):
    dana = await add_user(svc, "dana")
    _, cookie, _ = await what_others_hold(svc, dana)
    async with request(app, svc) as db:
        await stepup.reset_password(db, svc.settings, dana, NEW)

    assert await unrevoked_browsers(svc, dana) == 0  # the security page lists none
    assert not await still_trusted(svc, dana, cookie)
    assert "trusted_browser.revoked" in await events(svc, dana)


# --- new recovery codes -----------------------------------------------------------------------


async def test_new_recovery_codes_need_a_fresh_second_factor(app, svc):
    dana = await add_user(svc, "dana")
    _, _, old = await what_others_hold(svc, dana)
    async with request(app, svc) as db:
        with pytest.raises(stepup.SecondFactorNeeded):
            await stepup.regenerate_codes(db, svc.settings, dana)
    async with svc.db.session() as db:
        assert await recovery_codes.use(db, svc.settings, dana.id, old[0])


async def test_new_recovery_codes_replace_the_old_ones(app, svc):
    dana = await add_user(svc, "dana")
    _, _, old = await what_others_hold(svc, dana)
    async with request(app, svc) as db:
        sessions.mark_fresh()
        new = await stepup.regenerate_codes(db, svc.settings, dana)
    assert len(new) == 10 and not set(new) & set(old)
    assert await mailed(app, dana) == ["New recovery codes were made on your push2fa account"]
    async with svc.db.session() as db:
        assert not await recovery_codes.use(db, svc.settings, dana.id, old[0])
        assert await recovery_codes.use(db, svc.settings, dana.id, new[0])


# --- turning push off -------------------------------------------------------------------------


async def test_turning_push_off_without_a_second_factor_changes_nothing(app, svc):
    dana = await add_user(svc, "dana")
    _, cookie, _ = await what_others_hold(svc, dana)
    async with request(app, svc) as db:
        with pytest.raises(stepup.SecondFactorNeeded):
            await stepup.disable_push_now(db, svc.settings, dana)
    assert (await account(svc, dana)).authy_id == dana.authy_id
    assert await still_trusted(svc, dana, cookie)
    assert await codes_left(svc, dana) == 10
    assert await mailed(app, dana) == []


async def test_turning_push_off_forgets_the_phone_codes_and_trusted_browsers(app, svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    _, cookie, _ = await what_others_hold(svc, dana)
    _, erins_cookie, _ = await what_others_hold(svc, erin)
    async with request(app, svc) as db:
        sessions.mark_fresh()
        await stepup.disable_push_now(db, svc.settings, dana)
    user = await account(svc, dana)
    assert (user.authy_id, user.push_enabled_at) == (None, None)
    assert not await still_trusted(svc, dana, cookie)
    assert await unrevoked_browsers(svc, dana) == 0
    assert await codes_left(svc, dana) == 0
    async with svc.db.session() as db:
        disabled = (
            await db.execute(select(AuditEvent.details).where(AuditEvent.event == "twofa.disabled"))
        ).scalar_one()
    assert disabled == {"proof": "fresh_session"}
    assert "twofa.disabled" in await events(svc, dana)
    assert await mailed(app, dana) == [
        "Push two-factor login was turned off on your push2fa account"
    ]
    # The push service is down here (no code of its own): that is recorded, and push stays
    # off all the same.
    assert await details_of(svc, dana, "twofa.delete_failed") == [{"error_code": "-"}]
    assert (await account(svc, erin)).authy_id == erin.authy_id
    assert await still_trusted(svc, erin, erins_cookie)
    assert await codes_left(svc, erin) == 10


# --- asking the phone -------------------------------------------------------------------------


async def test_a_confirmation_push_refused_by_the_budget_binds_nothing(app, svc):
    dana = await add_user(svc, "dana", pushes_since_login=99)
    async with request(app, svc) as db:
        outcome = await stepup.ask_phone(db, dana, ChallengePurpose.REAUTH, "/account/security")
        assert SESSION_KEY not in session
    assert outcome.challenge is None
    assert outcome.refused is not None and outcome.refused.reason == push_budget.SPENT


async def test_a_confirmation_push_the_service_failed_binds_nothing_and_costs_nothing(app, svc):
    dana = await add_user(svc, "dana")
    async with request(app, svc) as db:
        outcome = await stepup.ask_phone(db, dana, ChallengePurpose.DISABLE, "/")
        assert SESSION_KEY not in session
    assert outcome.challenge is None and outcome.problem
    async with svc.db.session() as db:
        statuses = (await db.execute(select(LoginChallenge.status))).scalars().all()
    assert list(statuses) == [ChallengeStatus.CANCELLED]
    assert (await account(svc, dana)).pushes_since_login == 0
