"""Every row of every table, to prove a request changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from push2fa.models import Base

Snapshot = dict[str, list[tuple[Any, ...]]]


async def snapshot(engine: AsyncEngine, skip: frozenset[str] = frozenset()) -> Snapshot:
    """The rows of each table (but `skip`), in a stable order; `skip` also names columns
    as `table.column` (e.g. `users.last_seen`, which moves on every visit)."""
    tables: Snapshot = {}
    async with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            columns = [c for c in table.columns if f"{table.name}.{c.name}" not in skip]
            order = list(table.primary_key.columns) or columns
            rows = (await conn.execute(select(*columns).order_by(*order))).all()
            tables[table.name] = [tuple(row) for row in rows]
    return tables


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(name for name in before if before[name] != after.get(name))
