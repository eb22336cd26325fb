"""Indexes for the periodic work: the status poll reads what is due by next_poll_at and
redelivery reads what was just decided by decided_at, each a range scan instead of a walk
over every pending challenge. Decided challenges lose their next_poll_at (the state
machine now clears it on every transition), so the poll index holds only pending ones.

Revision ID: 0009_periodic_indexes
Revises: 0008_passkeys
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_periodic_indexes"
down_revision: str | None = "0008_passkeys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("UPDATE login_challenges SET next_poll_at = NULL WHERE status != 'pending'"))
    op.create_index("ix_login_challenges_next_poll_at", "login_challenges", ["next_poll_at"])
    op.create_index("ix_login_challenges_decided_at", "login_challenges", ["decided_at"])


def downgrade() -> None:
    op.drop_index("ix_login_challenges_decided_at", table_name="login_challenges")
    op.drop_index("ix_login_challenges_next_poll_at", table_name="login_challenges")
