"""The greeting after a login: "Welcome back" only to someone who has been here before."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.models import AuditEvent, User


async def welcome_message(db: AsyncSession, user: User) -> str:
    """Call after the login's own "login.succeeded" row is written."""
    logins = (
        await db.execute(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.user_id == user.id, AuditEvent.event == "login.succeeded"
            )
        )
    ).scalar_one()
    if logins <= 1:
        return f"Welcome, {user.username}. You are logged in."
    return f"Welcome back, {user.username}."
