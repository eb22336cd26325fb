"""Users created with users/new can attach the Approver by proving their e-mail: the push
service's users get the e-mail as it is compared (ASCII letters in lower case, filled in
here for existing users), and one-time codes e-mailed to such an address are kept, hashed,
until they expire.

Revision ID: 0010_email_codes
Revises: 0009_periodic_indexes
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from push2fa.models import UTCDateTime

revision: str = "0010_email_codes"
down_revision: str | None = "0009_periodic_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy of push2fa.pushservice.store.email_key as it is today: a migration must not
# change meaning when the code does.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def upgrade() -> None:
    # Plain ADD COLUMN: a batch rebuild on SQLite would drop and re-create the table that
    # the devices and requests refer to with ON DELETE CASCADE.
    op.add_column("pushservice_users", sa.Column("email_key", sa.String(length=254)))
    op.create_index(op.f("ix_pushservice_users_email_key"), "pushservice_users", ["email_key"])
    users = sa.table(
        "pushservice_users",
        sa.column("authy_id", sa.BigInteger()),
        sa.column("email", sa.String()),
        sa.column("email_key", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(users.c.authy_id, users.c.email).where(users.c.email.isnot(None)))
    for authy_id, email in rows.all():
        bind.execute(
            users.update()
            .where(users.c.authy_id == authy_id)
            .values(email_key=email.strip().translate(_ASCII_LOWER))
        )
    op.create_table(
        "pushservice_email_codes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("email_key", sa.String(length=254), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("claim_hash", sa.String(length=64), nullable=True),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pushservice_email_codes")),
        sa.UniqueConstraint("claim_hash", name=op.f("uq_pushservice_email_codes_claim_hash")),
    )
    op.create_index(
        op.f("ix_pushservice_email_codes_email_key"), "pushservice_email_codes", ["email_key"]
    )
    op.create_index(
        op.f("ix_pushservice_email_codes_expires_at"), "pushservice_email_codes", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_pushservice_email_codes_expires_at"), table_name="pushservice_email_codes"
    )
    op.drop_index(
        op.f("ix_pushservice_email_codes_email_key"), table_name="pushservice_email_codes"
    )
    op.drop_table("pushservice_email_codes")
    op.drop_index(op.f("ix_pushservice_users_email_key"), table_name="pushservice_users")
    op.drop_column("pushservice_users", "email_key")  # native DROP COLUMN (SQLite 3.35+)
