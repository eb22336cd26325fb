"""Abuse resistance: failure counters and locks, number matching, recovery codes,
trusted browsers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from push2fa.models import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch table rebuild): SQLite's rebuild would silently drop the
    # expression indexes that keep usernames and e-mails unique case-insensitively.
    op.add_column(
        "users", sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("users", sa.Column("second_factor_locked_at", UTCDateTime(), nullable=True))
    op.add_column("users", sa.Column("push_blocked_until", UTCDateTime(), nullable=True))
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("users", sa.Column("password_changed_at", UTCDateTime(), nullable=True))
    op.add_column("login_challenges", sa.Column("match_code", sa.String(length=4), nullable=True))

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])

    op.create_table(
        "trusted_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("browser", sa.String(length=120), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_trusted_devices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_devices")),
    )
    op.create_index("ix_trusted_devices_user_id", "trusted_devices", ["user_id"])


def downgrade() -> None:
    op.drop_table("trusted_devices")
    op.drop_table("recovery_codes")
    with op.batch_alter_table("login_challenges") as batch:
        batch.drop_column("match_code")
    with op.batch_alter_table("users") as batch:
        for column in (
            "password_changed_at",
            "must_change_password",
            "push_blocked_until",
            "second_factor_locked_at",
            "failed_attempts",
        ):
            batch.drop_column(column)
    if op.get_bind().dialect.name == "sqlite":  # the batch rebuild dropped them
        op.create_index(
            "uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True
        )
        op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
