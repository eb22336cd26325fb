"""The push service's data in the app's database: users, devices, approval requests, TOTP
replay state and used registration tokens, so enrolled phones survive a restart.

Revision ID: 0005_pushservice
Revises: 0004_mail_limits
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from push2fa.models import UTCDateTime

revision: str = "0005_pushservice"
down_revision: str | None = "0004_mail_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pushservice_users",
        sa.Column("authy_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("object_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("cellphone", sa.String(length=32), nullable=True),
        sa.Column("country_code", sa.Integer(), nullable=True),
        sa.Column("custom_user_id", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("authy_id", name=op.f("pk_pushservice_users")),
        sa.UniqueConstraint(
            "country_code", "cellphone", name=op.f("uq_pushservice_users_country_code_cellphone")
        ),
        sa.UniqueConstraint("custom_user_id", name=op.f("uq_pushservice_users_custom_user_id")),
    )
    op.create_table(
        "pushservice_devices",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("authy_id", sa.BigInteger(), nullable=False),
        sa.Column("totp_secret", sa.LargeBinary(length=64), nullable=False),
        sa.Column("registered_at", UTCDateTime(), nullable=False),
        sa.Column("registration_ip", sa.String(length=64), nullable=False),
        sa.Column("os_type", sa.String(length=16), nullable=False),
        sa.Column("last_totp_step", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["authy_id"],
            ["pushservice_users.authy_id"],
            name=op.f("fk_pushservice_devices_authy_id_pushservice_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pushservice_devices")),
    )
    op.create_index(op.f("ix_pushservice_devices_authy_id"), "pushservice_devices", ["authy_id"])
    op.create_table(
        "pushservice_requests",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("object_id", sa.String(length=24), nullable=False),
        sa.Column("authy_id", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("hidden_details", sa.JSON(), nullable=False),
        sa.Column("logos", sa.JSON(), nullable=True),
        sa.Column("seconds_to_expire", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=True),
        sa.Column("device_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("responder_ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["authy_id"],
            ["pushservice_users.authy_id"],
            name=op.f("fk_pushservice_requests_authy_id_pushservice_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_pushservice_requests")),
    )
    op.create_index(
        "ix_pushservice_requests_authy_id_status",
        "pushservice_requests",
        ["authy_id", "status"],
    )
    op.create_table(
        "pushservice_used_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("custom_user_id", sa.String(length=255), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_pushservice_used_tokens")),
    )
    op.create_index(
        op.f("ix_pushservice_used_tokens_expires_at"), "pushservice_used_tokens", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_table("pushservice_used_tokens")
    op.drop_table("pushservice_requests")
    op.drop_table("pushservice_devices")
    op.drop_table("pushservice_users")
