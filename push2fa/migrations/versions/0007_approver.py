"""The Approver: phones' passkeys, their push subscriptions, single-use ceremonies.

Revision ID: 0007_approver
Revises: 0006_push_budget
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from push2fa.models import UTCDateTime

revision: str = "0007_approver"
down_revision: str | None = "0006_push_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approver_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("authy_id", sa.BigInteger(), nullable=False),
        sa.Column("credential_id", sa.String(length=1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("device_type", sa.String(length=20), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approver_credentials")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_approver_credentials_credential_id")),
    )
    op.create_index("ix_approver_credentials_device_id", "approver_credentials", ["device_id"])
    op.create_index("ix_approver_credentials_authy_id", "approver_credentials", ["authy_id"])

    op.create_table(
        "approver_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=2048), nullable=False),
        sa.Column("p256dh", sa.String(length=100), nullable=False),
        sa.Column("auth", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_delivered_at", UTCDateTime(), nullable=True),
        sa.Column("paused_until", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["credential"],
            ["approver_credentials.id"],
            name=op.f("fk_approver_subscriptions_credential_approver_credentials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approver_subscriptions")),
        sa.UniqueConstraint("credential", name=op.f("uq_approver_subscriptions_credential")),
    )

    op.create_table(
        "approver_ceremonies",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("challenge", sa.LargeBinary(), nullable=False),
        sa.Column("request_uuid", sa.String(length=64), nullable=True),
        sa.Column("credential", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approver_ceremonies")),
    )
    op.create_index("ix_approver_ceremonies_expires_at", "approver_ceremonies", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_approver_ceremonies_expires_at", table_name="approver_ceremonies")
    op.drop_table("approver_ceremonies")
    op.drop_table("approver_subscriptions")
    op.drop_index("ix_approver_credentials_authy_id", table_name="approver_credentials")
    op.drop_index("ix_approver_credentials_device_id", table_name="approver_credentials")
    op.drop_table("approver_credentials")
