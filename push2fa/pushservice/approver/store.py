"""The Approver's own records: passkeys of phones, their push subscriptions, single-use
ceremony challenges.

They live in the app's database (migration ``0003_approver``), next to the push service's
users and devices but apart from them: a phone's passkey refers to the push service device
it was enrolled as, and is only accepted while that device exists. Every single-use record
is spent with one conditional UPDATE, so two submissions of the same answer cannot both win,
in one process or many.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from push2fa.db import Database
from push2fa.models import NAMING, UTCDateTime

metadata = MetaData(naming_convention=NAMING)

credentials = Table(
    "approver_credentials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", BigInteger, nullable=False, index=True),
    Column("authy_id", BigInteger, nullable=False, index=True),
    Column("credential_id", String(1400), nullable=False, unique=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("device_type", String(20), nullable=False),
    Column("backed_up", Boolean, nullable=False),
    Column("name", String(80), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

subscriptions = Table(
    "approver_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "credential",
        Integer,
        ForeignKey("approver_credentials.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("endpoint", String(2048), nullable=False),
    Column("p256dh", String(100), nullable=False),
    Column("auth", String(40), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_delivered_at", UTCDateTime(), nullable=True),
    Column("paused_until", UTCDateTime(), nullable=True),
)

ceremonies = Table(
    "approver_ceremonies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("purpose", String(16), nullable=False),
    Column("challenge", LargeBinary, nullable=False),
    Column("request_uuid", String(64), nullable=True),
    Column("credential", Integer, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    Column("used_at", UTCDateTime(), nullable=True),
)


@dataclass(frozen=True)
class Credential:
    id: int
    device_id: int
    authy_id: int
    credential_id: str
    public_key: bytes
    sign_count: int
    device_type: str
    backed_up: bool
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class StoredSubscription:
    id: int
    credential: int
    endpoint: str
    p256dh: str
    auth: str
    paused_until: datetime | None


@dataclass(frozen=True)
class Ceremony:
    id: str
    purpose: str
    challenge: bytes
    request_uuid: str | None
    credential: int | None
    expires_at: datetime


class ApproverStore:
    """Async access to the Approver's tables; one short session per call."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- passkeys --------------------------------------------------------------------

    async def add_credential(
        self,
        *,
        device_id: int,
        authy_id: int,
        credential_id: str,
        public_key: bytes,
        sign_count: int,
        device_type: str,
        backed_up: bool,
        name: str,
        now: datetime,
    ) -> Credential:
        async with self.db.session() as s:
            result = await s.execute(
                insert(credentials)
                .values(
                    device_id=device_id,
                    authy_id=authy_id,
                    credential_id=credential_id,
                    public_key=public_key,
                    sign_count=sign_count,
                    device_type=device_type,
                    backed_up=backed_up,
                    name=name,
                    created_at=now,
                )
                .returning(credentials.c.id)
            )
            row_id = result.scalar_one()
            await s.commit()
        found = await self.credential(row_id)
        assert found is not None
        return found

    async def credential(self, row_id: int) -> Credential | None:
        return await self._one_credential(credentials.c.id == row_id)

    async def credential_by_id(self, credential_id: str) -> Credential | None:
        return await self._one_credential(credentials.c.credential_id == credential_id)

    async def credentials_for(self, authy_id: int) -> list[Credential]:
        async with self.db.session() as s:
            rows = await s.execute(
                select(credentials)
                .where(credentials.c.authy_id == authy_id, credentials.c.revoked_at.is_(None))
                .order_by(credentials.c.id)
            )
            return [Credential(**row._mapping) for row in rows]

    async def _one_credential(self, condition: object) -> Credential | None:
        async with self.db.session() as s:
            row = (await s.execute(select(credentials).where(condition))).first()  # type: ignore[arg-type]
        return None if row is None else Credential(**row._mapping)

    async def advance_sign_count(self, row_id: int, old: int, new: int, now: datetime) -> bool:
        """Record a used assertion; False if another one got there first (a replay)."""
        async with self.db.session() as s:
            result = await s.execute(
                update(credentials)
                .where(
                    credentials.c.id == row_id,
                    credentials.c.sign_count == old,
                    credentials.c.revoked_at.is_(None),
                )
                .values(sign_count=new, last_used_at=now)
            )
            await s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke(self, row_id: int, now: datetime) -> bool:
        async with self.db.session() as s:
            result = await s.execute(
                update(credentials)
                .where(credentials.c.id == row_id, credentials.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            await s.execute(delete(subscriptions).where(subscriptions.c.credential == row_id))
            await s.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke_device(self, device_id: int, now: datetime) -> int:
        """Revoke every passkey of a removed device and drop its subscriptions at once."""
        async with self.db.session() as s:
            ids = select(credentials.c.id).where(credentials.c.device_id == device_id)
            await s.execute(delete(subscriptions).where(subscriptions.c.credential.in_(ids)))
            result = await s.execute(
                update(credentials)
                .where(credentials.c.device_id == device_id, credentials.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            await s.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    async def device_details(self, authy_id: int) -> dict[int, tuple[Credential, datetime | None]]:
        """Per device of the account: its active passkey and when a push last reached it."""
        async with self.db.session() as s:
            rows = await s.execute(
                select(credentials, subscriptions.c.last_delivered_at)
                .outerjoin(subscriptions, subscriptions.c.credential == credentials.c.id)
                .where(credentials.c.authy_id == authy_id, credentials.c.revoked_at.is_(None))
                .order_by(credentials.c.id)
            )
            found: dict[int, tuple[Credential, datetime | None]] = {}
            for row in rows:
                values = dict(row._mapping)
                delivered = values.pop("last_delivered_at")
                credential = Credential(**values)
                found[credential.device_id] = (credential, delivered)
            return found

    async def subscription_of_device(self, device_id: int) -> StoredSubscription | None:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(subscriptions)
                    .join(credentials, credentials.c.id == subscriptions.c.credential)
                    .where(credentials.c.device_id == device_id, credentials.c.revoked_at.is_(None))
                )
            ).first()
        if row is None:
            return None
        return StoredSubscription(
            row.id, row.credential, row.endpoint, row.p256dh, row.auth, row.paused_until
        )

    # --- push subscriptions ----------------------------------------------------------

    async def set_subscription(
        self, credential: int, endpoint: str, p256dh: str, auth: str, now: datetime
    ) -> None:
        async with self.db.session() as s:
            await s.execute(delete(subscriptions).where(subscriptions.c.credential == credential))
            await s.execute(
                insert(subscriptions).values(
                    credential=credential,
                    endpoint=endpoint,
                    p256dh=p256dh,
                    auth=auth,
                    created_at=now,
                )
            )
            await s.commit()

    async def subscriptions_for(self, authy_id: int) -> list[StoredSubscription]:
        async with self.db.session() as s:
            rows = await s.execute(
                select(subscriptions)
                .join(credentials, credentials.c.id == subscriptions.c.credential)
                .where(credentials.c.authy_id == authy_id, credentials.c.revoked_at.is_(None))
            )
            return [
                StoredSubscription(r.id, r.credential, r.endpoint, r.p256dh, r.auth, r.paused_until)
                for r in rows
            ]

    async def drop_subscription(self, subscription_id: int) -> None:
        async with self.db.session() as s:
            await s.execute(delete(subscriptions).where(subscriptions.c.id == subscription_id))
            await s.commit()

    async def note_push(
        self,
        subscription_id: int,
        status: int | None,
        now: datetime,
        *,
        delivered: bool,
        paused_until: datetime | None = None,
    ) -> None:
        values: dict[str, object] = {"last_status": status, "paused_until": paused_until}
        if delivered:
            values["last_delivered_at"] = now
        async with self.db.session() as s:
            await s.execute(
                update(subscriptions).where(subscriptions.c.id == subscription_id).values(values)
            )
            await s.commit()

    # --- single-use ceremony challenges ----------------------------------------------

    async def new_ceremony(
        self,
        purpose: str,
        lifetime: timedelta,
        now: datetime,
        *,
        request_uuid: str | None = None,
        credential: int | None = None,
    ) -> Ceremony:
        ceremony = Ceremony(
            id=secrets.token_urlsafe(24),
            purpose=purpose,
            challenge=secrets.token_bytes(32),
            request_uuid=request_uuid,
            credential=credential,
            expires_at=now + lifetime,
        )
        async with self.db.session() as s:
            await s.execute(delete(ceremonies).where(ceremonies.c.expires_at < now))
            await s.execute(
                insert(ceremonies).values(
                    id=ceremony.id,
                    purpose=purpose,
                    challenge=ceremony.challenge,
                    request_uuid=request_uuid,
                    credential=credential,
                    created_at=now,
                    expires_at=ceremony.expires_at,
                )
            )
            await s.commit()
        return ceremony

    async def spend_ceremony(
        self, ceremony_id: str, purpose: str, now: datetime
    ) -> Ceremony | None:
        """The ceremony, marked used; None if unknown, expired, of another purpose or
        already spent. Whoever spends it first wins; a replay finds nothing."""
        async with self.db.session() as s:
            result = await s.execute(
                update(ceremonies)
                .where(
                    ceremonies.c.id == ceremony_id,
                    ceremonies.c.purpose == purpose,
                    ceremonies.c.used_at.is_(None),
                    ceremonies.c.expires_at > now,
                )
                .values(used_at=now)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                await s.rollback()
                return None
            row = (await s.execute(select(ceremonies).where(ceremonies.c.id == ceremony_id))).one()
            await s.commit()
        return Ceremony(
            row.id, row.purpose, row.challenge, row.request_uuid, row.credential, row.expires_at
        )
