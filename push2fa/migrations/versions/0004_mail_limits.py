"""Mail limits: the mails sent per address, counted for the hourly per-address limit.

Revision ID: 0004_mail_limits
Revises: 0003_sessions
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from push2fa.models import UTCDateTime

revision: str = "0004_mail_limits"
down_revision: str | None = "0003_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mail_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address_key", sa.String(length=64), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_sends")),
    )
    op.create_index("ix_mail_sends_address_key", "mail_sends", ["address_key"])
    op.create_index("ix_mail_sends_sent_at", "mail_sends", ["sent_at"])


def downgrade() -> None:
    op.drop_table("mail_sends")
