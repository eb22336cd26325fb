"""Push budget: a per-account counter of pushes sent since the last successful login.

Revision ID: 0006_push_budget
Revises: 0005_pushservice
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_push_budget"
down_revision: str | None = "0005_pushservice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild), as in 0002: a rebuild would drop the expression
    # indexes that keep usernames and e-mails unique case-insensitively on SQLite.
    op.add_column(
        "users",
        sa.Column("pushes_since_login", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("pushes_since_login")
