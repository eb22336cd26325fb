"""Reading the app's database from tests, through the app's own session factory."""

from __future__ import annotations

from quart import Quart
from sqlalchemy import select

from push2fa.models import AuditEvent, User, UserSession


async def all_users(app: Quart) -> list[User]:
    async with app.extensions["push2fa"].db.session() as db:
        return list((await db.execute(select(User).order_by(User.id))).scalars())


async def user_named(app: Quart, username: str) -> User:
    users = [u for u in await all_users(app) if u.username == username]
    assert len(users) == 1, f"expected one user {username!r}, found {len(users)}"
    return users[0]


async def audit_events(app: Quart, event: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if event is not None:
        query = query.where(AuditEvent.event == event)
    async with app.extensions["push2fa"].db.session() as db:
        return list((await db.execute(query)).scalars())


async def login_sessions(app: Quart, username: str) -> list[UserSession]:
    """The user's session records, oldest first."""
    async with app.extensions["push2fa"].db.session() as db:
        user = (await db.execute(select(User).where(User.username == username))).scalar_one()
        rows = await db.execute(
            select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.id)
        )
        return list(rows.scalars())
