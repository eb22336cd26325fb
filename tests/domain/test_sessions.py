"""The session rules on their own: when a session is over, whose sessions `end` ends, which
session a login cookie names, and what logging in and out does to this browser (direct
calls inside a request from a chosen address and browser)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from quart import Quart, Response, g, session
from quart_auth import current_user
from sqlalchemy import select, update

from push2fa.config import load_settings
from push2fa.domain import sessions
from push2fa.models import AuditEvent, User, UserSession, utcnow
from push2fa.services import Services
from tests.conftest import TEST_SECRET
from tests.domain.rows import account, add_user, events
from tests.web.auth.mailbox import sent_mail

SETTINGS = load_settings(
    environ={}, overrides={"secret_key": TEST_SECRET, "instance_path": "/nonexistent"}
)
NOW = utcnow()


def record(*, remember: bool, age: timedelta, idle: timedelta) -> UserSession:
    return UserSession(
        created_at=NOW - age, last_active_at=NOW - idle, remember=remember, ended_at=None
    )


IDLE = timedelta(minutes=SETTINGS.session_idle_minutes)
LIFETIME = timedelta(hours=SETTINGS.session_max_hours)
REMEMBER = timedelta(days=SETTINGS.remember_days)
TICK = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("remember", "age", "idle", "reason"),
    [
        (False, IDLE - TICK, IDLE - TICK, None),
        (False, IDLE, IDLE, "idle"),
        (False, LIFETIME - TICK, timedelta(0), None),
        (False, LIFETIME, timedelta(0), "expired"),
        (True, REMEMBER - TICK, REMEMBER - TICK, None),
        (True, REMEMBER, timedelta(0), "expired"),
    ],
)
def test_when_a_session_is_over(remember, age, idle, reason):
    assert sessions.end_reason(SETTINGS, record(remember=remember, age=age, idle=idle), NOW) == (
        reason
    )


def test_an_ended_session_stays_over():
    ended = record(remember=True, age=timedelta(0), idle=timedelta(0))
    ended.ended_at, ended.ended_reason = NOW, "logout"
    assert sessions.end_reason(SETTINGS, ended, NOW) == "logout"


async def _users_with_sessions(app: Quart) -> tuple[list[User], list[UserSession]]:
    async with app.extensions["push2fa"].db.session() as db:
        users = [User(username=n, email=f"{n}@example.com", password_hash="x") for n in "ab"]
        db.add_all(users)
        await db.flush()
        rows = []
        for user in (users[0], users[0], users[1]):
            row, _ = await sessions.create(db, user, remember=False, ip="", user_agent="")
            rows.append(row)
        await db.commit()
        return users, rows


async def _ended(app: Quart) -> list[int]:
    async with app.extensions["push2fa"].db.session() as db:
        rows = await db.execute(select(UserSession.id).where(UserSession.ended_at.is_not(None)))
        return sorted(rows.scalars())


async def test_end_touches_only_the_users_own_sessions(app: Quart):
    (a, _), (a1, a2, b1) = await _users_with_sessions(app)
    async with app.extensions["push2fa"].db.session() as db:
        assert await sessions.end(db, a.id, session_id=b1.id, reason="x") == 0
        await db.commit()
    assert await _ended(app) == []


async def test_end_all_but_one(app: Quart):
    (a, _), (a1, a2, b1) = await _users_with_sessions(app)
    async with app.extensions["push2fa"].db.session() as db:
        assert await sessions.end(db, a.id, except_id=a2.id, reason="x") == 1
        await db.commit()
    assert await _ended(app) == [a1.id]


async def test_end_all(app: Quart):
    (a, _), (a1, a2, b1) = await _users_with_sessions(app)
    async with app.extensions["push2fa"].db.session() as db:
        assert await sessions.end(db, a.id, reason="x") == 2
        assert await sessions.end(db, a.id, reason="again") == 0  # ended stays ended
        await db.commit()
    assert await _ended(app) == [a1.id, a2.id]


async def test_a_token_resolves_only_with_its_own_bound_session(app: Quart):
    async with app.extensions["push2fa"].db.session() as db:
        user = User(username="a", email="a@example.com", password_hash="x")
        db.add(user)
        await db.flush()
        row, token = await sessions.create(db, user, remember=False, ip="", user_agent="")
        await db.commit()
        assert await sessions.resolve(db, SETTINGS, token, row.id) is not None
        assert await sessions.resolve(db, SETTINGS, token, row.id + 1) is None
        assert await sessions.resolve(db, SETTINGS, token, None) is None
        assert await sessions.resolve(db, SETTINGS, token + "x", row.id) is None
        assert await sessions.resolve(db, SETTINGS, "x" * 200, row.id) is None


# --- which session a login cookie names -----------------------------------------------------

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
HOME = "203.0.113.5"


async def _session_of(svc: Services, user: User, **values: Any) -> tuple[UserSession, str]:
    """A stored session of `user` and its cookie token; `values` set on the row after."""
    async with svc.db.session() as db:
        row, token = await sessions.create(db, user, remember=False, ip=HOME, user_agent=CHROME)
        if values:
            await db.execute(update(UserSession).where(UserSession.id == row.id).values(**values))
        await db.commit()
        return row, token


async def _stored(svc: Services, row: UserSession) -> UserSession:
    async with svc.db.session() as db:
        stored = await db.get(UserSession, row.id)
        assert stored is not None
        return stored


async def _session_ends(svc: Services, user: User) -> list[dict[str, Any]]:
    """What the user's history says about sessions that ended."""
    async with svc.db.session() as db:
        rows = await db.execute(
            select(AuditEvent.details).where(
                AuditEvent.user_id == user.id, AuditEvent.event == "session.ended"
            )
        )
        return list(rows.scalars())


async def test_a_login_token_carries_256_bits_and_only_its_hash_is_stored(svc):
    dana = await add_user(svc, "dana")
    row, token = await _session_of(svc, dana)
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    stored = await _stored(svc, row)
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() != token


async def test_a_session_records_the_browser_and_address_it_was_made_from(svc):
    """What the sessions page shows to tell one login from another; capped to the columns."""
    dana = await add_user(svc, "dana")
    address, agent = "2001:db8::" + "f" * 60, CHROME + " x" * 300
    async with svc.db.session() as db:
        row, _ = await sessions.create(db, dana, remember=True, ip=address, user_agent=agent)
        await db.commit()
    stored = await _stored(svc, row)
    assert (stored.ip, stored.user_agent) == (address[:64], agent[:512])
    assert stored.remember


async def test_a_login_cookie_resolves_to_its_own_session_and_its_owner(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    danas, danas_token = await _session_of(svc, dana)
    erins, erins_token = await _session_of(svc, erin)
    async with svc.db.session() as db:
        for row, token, owner in ((danas, danas_token, dana), (erins, erins_token, erin)):
            live = await sessions.resolve(db, svc.settings, token, row.id)
            assert live is not None
            assert (live.record.id, live.user.id) == (row.id, owner.id)
        # A stolen cookie paired with the thief's own signed session names nothing.
        assert await sessions.resolve(db, svc.settings, danas_token, erins.id) is None
        assert await sessions.resolve(db, svc.settings, None, danas.id) is None
        assert await sessions.resolve(db, svc.settings, "", danas.id) is None


async def test_an_idle_session_is_ended_at_its_next_request_and_only_it(app, svc):
    dana = await add_user(svc, "dana")
    idle, token = await _session_of(svc, dana, last_active_at=utcnow() - IDLE - TICK)
    other, _ = await _session_of(svc, dana)
    async with svc.db.session() as db:
        assert await sessions.resolve(db, svc.settings, token, idle.id) is None
    assert (await _stored(svc, idle)).ended_reason == "idle"
    assert await _ended(app) == [idle.id]
    assert (await _stored(svc, other)).ended_at is None
    assert await _session_ends(svc, dana) == [{"count": 1, "reason": "idle"}]
    async with svc.db.session() as db:  # ended stays ended, even if it were active again
        await db.execute(
            update(UserSession).where(UserSession.id == idle.id).values(last_active_at=utcnow())
        )
        await db.commit()
        assert await sessions.resolve(db, svc.settings, token, idle.id) is None


async def test_a_remembered_session_outlives_the_idle_time_not_its_lifetime(svc):
    dana = await add_user(svc, "dana")
    async with svc.db.session() as db:
        row, token = await sessions.create(db, dana, remember=True, ip=HOME, user_agent=CHROME)
        await db.execute(
            update(UserSession)
            .where(UserSession.id == row.id)
            .values(last_active_at=utcnow() - IDLE - TICK)
        )
        await db.commit()
        assert await sessions.resolve(db, svc.settings, token, row.id) is not None
        await db.execute(
            update(UserSession)
            .where(UserSession.id == row.id)
            .values(created_at=utcnow() - REMEMBER - TICK)
        )
        await db.commit()
        assert await sessions.resolve(db, svc.settings, token, row.id) is None
    assert (await _stored(svc, row)).ended_reason == "expired"


async def test_ending_one_session_ends_only_that_one_and_the_history_says_why(app, svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    first, _ = await _session_of(svc, dana)
    await _session_of(svc, dana)  # another of her sessions, and one of erin's, stay live
    await _session_of(svc, erin)
    async with svc.db.session() as db:
        assert await sessions.end(db, dana.id, session_id=first.id, reason="ended_by_user") == 1
        await db.commit()
    assert await _ended(app) == [first.id]
    assert (await _stored(svc, first)).ended_reason == "ended_by_user"
    assert await _session_ends(svc, dana) == [{"count": 1, "reason": "ended_by_user"}]
    assert await _session_ends(svc, erin) == []


# --- activity and the sessions page ----------------------------------------------------------


async def test_a_session_in_use_is_noted_as_active_even_while_another_browser_is(svc):
    """The account's last-seen time is fresh (another browser is in use), this session's
    is not: this session's activity is still written, or it would end as idle while used."""
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    a_while_ago = utcnow() - timedelta(minutes=5)
    row, token = await _session_of(svc, dana, last_active_at=a_while_ago)
    erins, _ = await _session_of(svc, erin, last_active_at=a_while_ago)
    async with svc.db.session() as db:
        await db.execute(update(User).where(User.id == dana.id).values(last_seen=utcnow()))
        await db.commit()
        live = await sessions.resolve(db, svc.settings, token, row.id)
        assert live is not None
        await sessions.touch(db, live)
    stored = await _stored(svc, row)
    assert stored.last_active_at > a_while_ago + timedelta(minutes=4)
    assert live.record.last_active_at == stored.last_active_at  # as this request sees it
    assert (await _stored(svc, erins)).last_active_at == a_while_ago


async def test_activity_is_written_at_most_once_a_minute(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    a_while_ago = utcnow() - timedelta(minutes=5)
    row, token = await _session_of(svc, dana, last_active_at=a_while_ago)
    async with svc.db.session() as db:
        for person in (dana, erin):
            await db.execute(update(User).where(User.id == person.id).values(last_seen=a_while_ago))
        await db.commit()
        live = await sessions.resolve(db, svc.settings, token, row.id)
        assert live is not None
        await sessions.touch(db, live)
    noted = (await _stored(svc, row)).last_active_at
    assert noted > a_while_ago + timedelta(minutes=4)
    assert (await account(svc, dana)).last_seen == noted == live.user.last_seen
    assert (await account(svc, erin)).last_seen == a_while_ago
    async with svc.db.session() as db:
        live = await sessions.resolve(db, svc.settings, token, row.id)
        assert live is not None
        await sessions.touch(db, live)  # seconds later: nothing written
    assert (await _stored(svc, row)).last_active_at == noted
    assert (await account(svc, dana)).last_seen == noted


async def test_the_sessions_page_lists_only_the_users_live_sessions_latest_first(svc):
    dana, erin = await add_user(svc, "dana"), await add_user(svc, "erin")
    earlier, _ = await _session_of(svc, dana, last_active_at=utcnow() - timedelta(minutes=5))
    latest, _ = await _session_of(svc, dana)
    await _session_of(svc, dana, last_active_at=utcnow() - IDLE - TICK)
    await _session_of(svc, dana, ended_at=utcnow(), ended_reason="logout")
    await _session_of(svc, erin)
    async with svc.db.session() as db:
        listed = await sessions.listed(db, svc.settings, dana.id)
    assert [row.id for row in listed] == [latest.id, earlier.id]


# --- logging in and out in this browser --------------------------------------------------------


@asynccontextmanager
async def browser(app: Quart, svc: Services) -> AsyncIterator[Any]:
    """A request from this browser, with a database session for the domain call."""
    headers = {"User-Agent": CHROME, "Remote-Addr": HOME}
    async with (
        app.test_request_context("/auth/login", method="POST", headers=headers),
        svc.db.session() as db,
    ):
        yield db


async def _cookie_resolves(svc: Services) -> int | None:
    """The session this browser's login cookie and signed session name, if any."""
    async with svc.db.session() as db:
        live = await sessions.resolve(
            db, svc.settings, current_user.auth_id, session.get(sessions.BOUND_KEY)
        )
        return None if live is None else live.record.id


async def _cookies_kept_after_the_browser_closes(app: Quart) -> dict[str, bool]:
    """The cookies this request's response sets, each with whether it has an expiry (kept
    when the browser closes) or not (gone with it)."""
    response = await app.process_response(Response(""))
    return {
        header.split("=", 1)[0]: "Expires=" in header
        for header in response.headers.getlist("Set-Cookie")
    }


@pytest.mark.parametrize("remember", [True, False])
async def test_logging_in_gives_this_browser_a_new_session_of_its_own(app, svc, remember):
    dana = await add_user(svc, "dana")
    async with browser(app, svc) as db:
        session["planted"] = "by an attacker before the login"  # session fixation
        await sessions.log_in(db, svc.settings, dana, remember=remember, second_factor="push")
        assert "planted" not in session
        here = sessions.current()
        assert here is not None and here is g.login and g.user is dana
        assert here.user_id == dana.id and here.remember is remember
        assert (here.ip, here.user_agent) == (HOME, CHROME)
        assert session.permanent is remember
        assert await _cookie_resolves(svc) == here.id
        assert await _cookies_kept_after_the_browser_closes(app) == {
            "push2fa_auth": remember,  # "remember me" keeps the login cookie, and only then
            "push2fa_session": remember,
        }
    async with svc.db.session() as db:
        details = (
            await db.execute(
                select(AuditEvent.details).where(AuditEvent.event == "login.succeeded")
            )
        ).scalar_one()
    assert details == {"second_factor": "push"}
    assert "login.succeeded" in await events(svc, dana)
    mails = await sent_mail(app)
    assert [m["Subject"] for m in mails] == ["New login to your push2fa account"]
    assert mails[0]["To"] == "dana@example.com"


@pytest.mark.parametrize(
    ("second_factor", "fresh"),
    [
        ("push", True),
        ("recovery", True),
        ("totp", True),
        ("passkey", True),
        ("none", False),
        ("trusted_browser", False),
    ],
)
async def test_only_a_second_factor_given_now_counts_as_fresh(app, svc, second_factor, fresh):
    """A trusted browser skipped the second factor: it must not unlock sensitive changes."""
    dana = await add_user(svc, "dana")
    async with browser(app, svc) as db:
        await sessions.log_in(db, svc.settings, dana, remember=False, second_factor=second_factor)
        assert sessions.is_fresh(dana) is fresh


async def test_logging_out_ends_this_browsers_session_only(app, svc):
    dana = await add_user(svc, "dana")
    async with browser(app, svc) as db:
        await sessions.log_in(db, svc.settings, dana, remember=False, second_factor="push")
        elsewhere = g.login
    async with browser(app, svc) as db:
        await sessions.log_in(db, svc.settings, dana, remember=False, second_factor="push")
        here = g.login
        await sessions.log_out(db)
        assert dict(session) == {} and g.user is None and sessions.current() is None
        assert current_user.auth_id is None
    assert await _ended(app) == [here.id]
    assert (await _stored(svc, here)).ended_reason == "logout"
    assert (await _stored(svc, elsewhere)).ended_at is None


async def test_logging_out_without_a_session_only_drops_the_cookies(app, svc):
    dana = await add_user(svc, "dana")
    await _session_of(svc, dana)
    async with browser(app, svc) as db:
        session[sessions.BOUND_KEY] = 1
        await sessions.log_out(db)
        assert dict(session) == {} and current_user.auth_id is None
    assert await _ended(app) == []
