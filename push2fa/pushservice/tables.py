"""The push service's tables, in the app's database (migrations 0005 and 0010).

They are kept apart from the app's ORM models on purpose: the push service may run as its
own server against the same database, and it only ever talks to the app over the Authy
API. Core tables suit it: every change that can race is one conditional statement.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from push2fa.models import NAMING, UTCDateTime

metadata = MetaData(naming_convention=NAMING)

users = Table(
    "pushservice_users",
    metadata,
    Column("authy_id", BigInteger, primary_key=True, autoincrement=False),
    Column("object_id", String(24), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("email", String(254), nullable=True),
    # The e-mail as the push service compares it (store.email_key): an Approver proving
    # the address the app registered finds the account by it (migration 0010).
    Column("email_key", String(254), nullable=True, index=True),
    Column("cellphone", String(32), nullable=True),
    Column("country_code", Integer, nullable=True),
    Column("custom_user_id", String(255), nullable=True, unique=True),
    UniqueConstraint("country_code", "cellphone"),
)

devices = Table(
    "pushservice_devices",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column(
        "authy_id",
        BigInteger,
        ForeignKey("pushservice_users.authy_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("totp_secret", LargeBinary(64), nullable=False),
    Column("registered_at", UTCDateTime(), nullable=False),
    Column("registration_ip", String(64), nullable=False),
    Column("os_type", String(16), nullable=False),
    Column("last_totp_step", BigInteger, nullable=False),
)

requests = Table(
    "pushservice_requests",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("object_id", String(24), nullable=False),
    Column(
        "authy_id",
        BigInteger,
        ForeignKey("pushservice_users.authy_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("message", Text, nullable=False),
    Column("details", JSON, nullable=False),
    Column("hidden_details", JSON, nullable=False),
    Column("logos", JSON, nullable=True),
    Column("seconds_to_expire", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("status", String(16), nullable=False),
    Column("processed_at", UTCDateTime(), nullable=True),
    Column("device_id", BigInteger, nullable=True),
    Column("reason", String(200), nullable=True),
    Column("responder_ip", String(64), nullable=True),
    Index("ix_pushservice_requests_authy_id_status", "authy_id", "status"),
)

# One row per registration token ever accepted (until it would have expired anyway): the
# primary key makes a token single-use, whichever process or host sees it twice.
used_tokens = Table(
    "pushservice_used_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("custom_user_id", String(255), nullable=False),
    Column("used_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# One-time codes the Approver e-mails to an address the app registered with users/new
# (migration 0010). Only hashes are kept. A code is tried with one conditional UPDATE that
# counts the try first, so parallel guesses cannot exceed the limit; a right code is
# exchanged, once, for a claim (its hash kept too); the claim is spent, once, in the same
# transaction that adds the device.
email_codes = Table(
    "pushservice_email_codes",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("email_key", String(254), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False),
    Column("tries", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("claim_hash", String(64), nullable=True, unique=True),
    Column("used_at", UTCDateTime(), nullable=True),
)
