"""What the domain tests read back from the database, fresh, through the app's own sessions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from push2fa.models import AuditEvent, LoginChallenge, User
from push2fa.services import Services


async def account(svc: Services, user: User) -> User:
    """The user's row as stored now (not the object the test holds)."""
    async with svc.db.session() as db:
        row = await db.get(User, user.id)
        assert row is not None
        return row


async def stored_challenge(svc: Services, challenge: LoginChallenge) -> LoginChallenge:
    """The challenge's row as stored now (not the object the test holds)."""
    async with svc.db.session() as db:
        found = await db.get(LoginChallenge, challenge.id)
        assert found is not None
        return found


async def events(svc: Services, user: User) -> list[str]:
    """The names of the user's history entries, oldest first."""
    async with svc.db.session() as db:
        rows = await db.execute(
            select(AuditEvent.event).where(AuditEvent.user_id == user.id).order_by(AuditEvent.id)
        )
        return list(rows.scalars())


async def add_user(svc: Services, name: str, authy_id: int | None = None) -> User:
    """A stored account with no password worth guessing, and with no phone unless given
    its push-service id."""
    async with svc.db.session() as db:
        person = User(
            username=name, email=f"{name}@example.com", password_hash="x", authy_id=authy_id
        )
        db.add(person)
        await db.commit()
        return person


async def set_challenge(svc: Services, challenge: LoginChallenge, **values: Any) -> None:
    """Change a stored challenge's columns behind the state machine's back (time passing,
    a state the test starts from)."""
    async with svc.db.session() as db:
        await db.execute(
            update(LoginChallenge).where(LoginChallenge.id == challenge.id).values(**values)
        )
        await db.commit()
