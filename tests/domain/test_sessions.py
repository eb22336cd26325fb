"""The session rules on their own: when a session is over, and whose sessions `end` ends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from quart import Quart
from sqlalchemy import select

from push2fa.config import load_settings
from push2fa.domain import sessions
from push2fa.models import User, UserSession, utcnow
from tests.conftest import TEST_SECRET

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
