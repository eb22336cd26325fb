"""Finding an account by what a person types to name it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.models import User


async def find_by_login(db: AsyncSession, login: str) -> User | None:
    """Look a user up by username or e-mail, case-insensitively."""
    key = login.strip()
    column = User.email if "@" in key else User.username
    # lower() on both sides: SQLite's lower() folds ASCII only, unlike Python's str.lower().
    return (
        await db.execute(select(User).where(func.lower(column) == func.lower(key)))
    ).scalar_one_or_none()
