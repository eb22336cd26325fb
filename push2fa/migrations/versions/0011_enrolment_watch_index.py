"""An index for the periodic loop's question "is a pending enrolment due?", asked every
tick: a seek on (status, next_poll_at) instead of a walk over every enrolment ever made.

Revision ID: 0011_enrolment_watch_index
Revises: 0010_email_codes
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011_enrolment_watch_index"
down_revision: str | None = "0010_email_codes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_enrollments_status_next_poll_at", "enrollments", ["status", "next_poll_at"])


def downgrade() -> None:
    op.drop_index("ix_enrollments_status_next_poll_at", table_name="enrollments")
