"""The migrations are the only way the schema is made: they must upgrade, downgrade and
keep the constraints the code relies on."""

from __future__ import annotations

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from push2fa.db import make_engine
from push2fa.migrate import alembic_config


async def is_current(engine: AsyncEngine) -> bool:
    """The database behind `engine` is at every head of the migration scripts."""

    def at_heads(connection: Connection) -> bool:
        heads = set(ScriptDirectory.from_config(alembic_config(str(engine.url))).get_heads())
        return set(MigrationContext.configure(connection).get_current_heads()) == heads

    async with engine.connect() as conn:
        return await conn.run_sync(at_heads)


async def _insert_user(conn, username: str, email: str) -> None:
    await conn.execute(
        text(
            "INSERT INTO users (username, email, password_hash, about_me, created_at, last_seen,"
            " failed_attempts, must_change_password) VALUES (:u, :e, 'x', '',"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, false)"
        ),
        {"u": username, "e": email},
    )


async def test_usernames_and_emails_stay_unique_ignoring_case(database_url):
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await _insert_user(conn, "Alice", "alice@example.com")
        for username, email in (("alice", "other@example.com"), ("bob", "ALICE@example.com")):
            with pytest.raises(IntegrityError):
                async with engine.begin() as conn:
                    await _insert_user(conn, username, email)
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_back_up(database_url):
    engine = make_engine(database_url)
    try:
        assert await is_current(engine)
        from alembic import command

        def down_and_up(connection, cfg):
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "base")
            command.upgrade(cfg, "head")

        async with engine.begin() as conn:
            await conn.run_sync(down_and_up, alembic_config(database_url))
        assert await is_current(engine)
        async with engine.begin() as conn:
            await _insert_user(conn, "Alice", "alice@example.com")
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await _insert_user(conn, "ALICE", "x@example.com")
    finally:
        await engine.dispose()


async def test_0010_gives_existing_push_service_users_their_email_key(database_url):
    """Users made before 0010 can prove their e-mail too: the upgrade fills in the key."""
    from alembic import command

    from push2fa.migrate import alembic_config

    engine = make_engine(database_url)

    def migrate(connection, revision: str, down: bool = False) -> None:
        cfg = alembic_config(database_url)
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate, "0009_periodic_indexes", True)
            await conn.execute(
                text(
                    "INSERT INTO pushservice_users (authy_id, object_id, created_at, email,"
                    " cellphone, country_code) VALUES (7, 'x', CURRENT_TIMESTAMP,"
                    " 'Ann.Lee@Example.COM', '5550123456', 1), (8, 'y', CURRENT_TIMESTAMP,"
                    " NULL, NULL, NULL)"
                )
            )
            await conn.run_sync(migrate, "head")
            keys = (
                await conn.execute(
                    text("SELECT authy_id, email_key FROM pushservice_users ORDER BY authy_id")
                )
            ).all()
        assert [tuple(row) for row in keys] == [(7, "ann.lee@example.com"), (8, None)]
        assert await is_current(engine)
    finally:
        await engine.dispose()
