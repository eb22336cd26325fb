"""The push service's store in the app's database (SQLite or PostgreSQL).

Phones must survive a restart, a second worker and a second host, so users, devices,
requests, TOTP replay state and spent registration tokens live in the tables of
:mod:`.tables`, made by the app's Alembic migrations. Each change that can race is a single
conditional statement whose row count says who won: ``INSERT ... ON CONFLICT DO NOTHING``
spends a token, ``UPDATE ... WHERE status = 'pending'`` decides or withdraws a request,
``UPDATE ... WHERE last_totp_step < :step`` accepts a TOTP step, ``UPDATE ... SET tries =
tries + 1 WHERE tries < :max`` counts a try of an e-mail code before it is compared, and
``UPDATE ... WHERE used_at IS NULL`` spends an e-mail claim. A registration's first
statement is its write, so SQLite takes the write lock at once and never has to upgrade.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, and_, delete, exists, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from push2fa.db import make_engine

from . import tables, totp
from .errors import ClaimRejected, TokenAlreadyUsed
from .store import (
    RETENTION,
    ApprovalRequest,
    Decision,
    Device,
    NewApprovalRequest,
    User,
    build_request,
    email_key,
    new_id,
    new_object_id,
)

_NEW_ID_ATTEMPTS = 5


def _user(row: RowMapping) -> User:
    return User(
        authy_id=row["authy_id"],
        object_id=row["object_id"],
        created_at=row["created_at"],
        email=row["email"],
        cellphone=row["cellphone"],
        country_code=row["country_code"],
        custom_user_id=row["custom_user_id"],
    )


def _device(row: RowMapping) -> Device:
    return Device(
        id=row["id"],
        authy_id=row["authy_id"],
        totp_secret=bytes(row["totp_secret"]),
        registered_at=row["registered_at"],
        registration_ip=row["registration_ip"],
        os_type=row["os_type"],
        last_totp_step=row["last_totp_step"],
    )


def _request(row: RowMapping) -> ApprovalRequest:
    logos = row["logos"]
    return ApprovalRequest(
        uuid=row["uuid"],
        object_id=row["object_id"],
        authy_id=row["authy_id"],
        message=row["message"],
        details=dict(row["details"]),
        hidden_details=dict(row["hidden_details"]),
        logos=None if logos is None else tuple(dict(logo) for logo in logos),
        seconds_to_expire=row["seconds_to_expire"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        status=row["status"],
        processed_at=row["processed_at"],
        device_id=row["device_id"],
        reason=row["reason"],
        responder_ip=row["responder_ip"],
    )


def _request_values(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "uuid": request.uuid,
        "object_id": request.object_id,
        "authy_id": request.authy_id,
        "message": request.message,
        "details": dict(request.details),
        "hidden_details": dict(request.hidden_details),
        "logos": None if request.logos is None else [dict(logo) for logo in request.logos],
        "seconds_to_expire": request.seconds_to_expire,
        "created_at": request.created_at,
        "updated_at": request.updated_at,
        "expires_at": request.expires_at,
        "status": request.status,
    }


def _live(now: datetime) -> Any:
    """Pending and not yet past its expiry: the only requests anyone may still answer."""
    requests = tables.requests.c
    return and_(
        requests.status == "pending",
        or_(requests.expires_at.is_(None), requests.expires_at > now),
    )


class SqlStore:
    """The :class:`~.store.Store` on an SQLAlchemy async engine of its own."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._dialect = self.engine.dialect.name

    async def close(self) -> None:
        await self.engine.dispose()

    def _insert_new(self, table: Table, values: Mapping[str, Any]) -> Insert:
        """INSERT that does nothing when a unique key is taken (row count 0)."""
        if self._dialect == "postgresql":
            return postgresql.insert(table).values(**values).on_conflict_do_nothing()
        return sqlite.insert(table).values(**values).on_conflict_do_nothing()

    # --- users ---------------------------------------------------------------------

    async def create_user(
        self, email: str, cellphone: str, country_code: int, now: datetime
    ) -> User:
        users = tables.users
        same_phone = and_(users.c.country_code == country_code, users.c.cellphone == cellphone)
        async with self.engine.begin() as conn:
            for _ in range(_NEW_ID_ATTEMPTS):
                await conn.execute(
                    self._insert_new(
                        users,
                        {
                            "authy_id": new_id(),
                            "object_id": new_object_id(),
                            "created_at": now,
                            "email": email,
                            "email_key": email_key(email),
                            "cellphone": cellphone,
                            "country_code": country_code,
                        },
                    )
                )
                row = (await conn.execute(select(users).where(same_phone))).mappings().first()
                if row is not None:
                    return _user(row)
        raise RuntimeError("no free authy_id found")

    async def _row_where(self, table: Table, condition: ColumnElement[bool]) -> RowMapping | None:
        """The one row of `table` a key names, or None."""
        async with self.engine.connect() as conn:
            return (await conn.execute(select(table).where(condition))).mappings().first()

    async def get_user(self, authy_id: int) -> User | None:
        row = await self._row_where(tables.users, tables.users.c.authy_id == authy_id)
        return None if row is None else _user(row)

    async def delete_user(self, authy_id: int) -> bool:
        """Its devices and requests go with it (ON DELETE CASCADE)."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(tables.users).where(tables.users.c.authy_id == authy_id)
            )
        return result.rowcount == 1

    async def remove_device(self, authy_id: int, device_id: int) -> bool:
        """Delete one of the user's devices; False if the user has no such device."""
        devices = tables.devices
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(devices).where(devices.c.id == device_id, devices.c.authy_id == authy_id)
            )
        return result.rowcount == 1

    async def register_device(
        self,
        custom_user_id: str,
        registration_ip: str,
        now: datetime,
        *,
        token_hash: str,
        token_expires_at: datetime,
    ) -> tuple[User, Device]:
        async with self.engine.begin() as conn:
            spent = await conn.execute(
                self._insert_new(
                    tables.used_tokens,
                    {
                        "token_hash": token_hash,
                        "custom_user_id": custom_user_id,
                        "used_at": now,
                        "expires_at": token_expires_at,
                    },
                )
            )
            if spent.rowcount != 1:
                raise TokenAlreadyUsed()
            user = await self._user_for(conn, custom_user_id, now)
            device = await self._new_device(conn, user.authy_id, registration_ip, now)
        return user, device

    async def _user_for(self, conn: AsyncConnection, custom_user_id: str, now: datetime) -> User:
        users = tables.users
        for _ in range(_NEW_ID_ATTEMPTS):
            await conn.execute(
                self._insert_new(
                    users,
                    {
                        "authy_id": new_id(),
                        "object_id": new_object_id(),
                        "created_at": now,
                        "custom_user_id": custom_user_id,
                    },
                )
            )
            row = (
                (await conn.execute(select(users).where(users.c.custom_user_id == custom_user_id)))
                .mappings()
                .first()
            )
            if row is not None:
                return _user(row)
        raise RuntimeError("no free authy_id found")

    async def _new_device(
        self, conn: AsyncConnection, authy_id: int, registration_ip: str, now: datetime
    ) -> Device:
        for _ in range(_NEW_ID_ATTEMPTS):
            device = Device(
                id=new_id(),
                authy_id=authy_id,
                totp_secret=totp.new_secret(),
                registered_at=now,
                registration_ip=registration_ip[:64],
            )
            added = await conn.execute(
                self._insert_new(
                    tables.devices,
                    {
                        "id": device.id,
                        "authy_id": authy_id,
                        "totp_secret": device.totp_secret,
                        "registered_at": now,
                        "registration_ip": device.registration_ip,
                        "os_type": device.os_type,
                        "last_totp_step": device.last_totp_step,
                    },
                )
            )
            if added.rowcount == 1:
                return device
        raise RuntimeError("no free device id found")

    async def registration_status(self, custom_user_id: str) -> int | None:
        users = tables.users
        async with self.engine.connect() as conn:
            authy_id = (
                await conn.execute(
                    select(users.c.authy_id).where(users.c.custom_user_id == custom_user_id)
                )
            ).scalar_one_or_none()
        return None if authy_id is None else int(authy_id)

    # --- e-mail codes (users/new users proving their e-mail) --------------------------

    async def users_with_email(self, email_key: str) -> list[User]:
        users = tables.users
        async with self.engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(users)
                        .where(users.c.email_key == email_key)
                        .order_by(users.c.created_at, users.c.authy_id)
                    )
                )
                .mappings()
                .all()
            )
        return [_user(row) for row in rows]

    async def issue_email_code(
        self, code_id: str, email_key: str, code_hash: str, now: datetime, expires_at: datetime
    ) -> None:
        codes = tables.email_codes
        async with self.engine.begin() as conn:
            await conn.execute(
                update(codes)
                .where(codes.c.email_key == email_key, codes.c.used_at.is_(None))
                .values(used_at=now)
            )
            await conn.execute(
                codes.insert().values(
                    id=code_id,
                    email_key=email_key,
                    code_hash=code_hash,
                    tries=0,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    def _live_code(self, now: datetime) -> ColumnElement[bool]:
        codes = tables.email_codes.c
        return and_(codes.used_at.is_(None), codes.expires_at > now)

    async def try_email_code(
        self, email_key: str, now: datetime, max_tries: int
    ) -> list[tuple[str, str]]:
        """The try is counted before anyone compares: a guess that is not counted (the
        limit reached, even by guesses in flight in parallel) is never compared."""
        codes = tables.email_codes
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    update(codes)
                    .where(
                        codes.c.email_key == email_key,
                        self._live_code(now),
                        codes.c.claim_hash.is_(None),
                        codes.c.tries < max_tries,
                    )
                    .values(tries=codes.c.tries + 1)
                    .returning(codes.c.id, codes.c.code_hash)
                )
            ).all()
        return [(row.id, row.code_hash) for row in rows]

    async def claim_email_code(self, code_id: str, claim_hash: str, now: datetime) -> bool:
        codes = tables.email_codes
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(codes)
                .where(codes.c.id == code_id, self._live_code(now), codes.c.claim_hash.is_(None))
                .values(claim_hash=claim_hash)
            )
        return result.rowcount == 1

    async def email_of_claim(self, claim_hash: str, now: datetime) -> str | None:
        codes = tables.email_codes
        async with self.engine.connect() as conn:
            found = (
                await conn.execute(
                    select(codes.c.email_key).where(
                        codes.c.claim_hash == claim_hash, self._live_code(now)
                    )
                )
            ).scalar_one_or_none()
        return None if found is None else str(found)

    async def register_device_by_claim(
        self, claim_hash: str, authy_id: int, registration_ip: str, now: datetime
    ) -> Device:
        """One conditional UPDATE spends the claim, and only for a user of its e-mail; the
        device is added in the same transaction, so phones racing one claim add one."""
        codes, users = tables.email_codes, tables.users
        owns_email = exists().where(
            users.c.authy_id == authy_id, users.c.email_key == codes.c.email_key
        )
        async with self.engine.begin() as conn:
            spent = await conn.execute(
                update(codes)
                .where(codes.c.claim_hash == claim_hash, self._live_code(now), owns_email)
                .values(used_at=now)
            )
            if spent.rowcount != 1:
                raise ClaimRejected()
            return await self._new_device(conn, authy_id, registration_ip, now)

    # --- devices -------------------------------------------------------------------

    async def get_device(self, device_id: int) -> Device | None:
        row = await self._row_where(tables.devices, tables.devices.c.id == device_id)
        return None if row is None else _device(row)

    async def devices_for(self, authy_id: int) -> list[Device]:
        devices = tables.devices
        async with self.engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(devices)
                        .where(devices.c.authy_id == authy_id)
                        .order_by(devices.c.registered_at, devices.c.id)
                    )
                )
                .mappings()
                .all()
            )
        return [_device(row) for row in rows]

    async def accept_totp_step(self, device_id: int, step: int) -> bool:
        devices = tables.devices
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(devices)
                .where(devices.c.id == device_id, devices.c.last_totp_step < step)
                .values(last_totp_step=step)
            )
        return result.rowcount == 1

    # --- approval requests -----------------------------------------------------------

    async def create_request(
        self, authy_id: int, new: NewApprovalRequest, now: datetime
    ) -> ApprovalRequest | None:
        """INSERT ... SELECT ... WHERE EXISTS (a device): one statement per push."""
        request = build_request(authy_id, new, now)
        requests, devices = tables.requests, tables.devices
        values = _request_values(request)
        columns = [requests.c[name] for name in values]
        has_device = exists().where(devices.c.authy_id == authy_id)
        source = select(*(literal(values[c.name], type_=c.type) for c in columns)).where(has_device)
        async with self.engine.begin() as conn:
            result = await conn.execute(requests.insert().from_select(columns, source))
        return request if result.rowcount == 1 else None

    async def get_request(self, request_uuid: str) -> ApprovalRequest | None:
        row = await self._row_where(tables.requests, tables.requests.c.uuid == request_uuid)
        return None if row is None else _request(row)

    async def decide_request(
        self,
        request_uuid: str,
        status: Decision,
        *,
        device_id: int,
        reason: str | None,
        responder_ip: str | None,
        now: datetime,
    ) -> ApprovalRequest | None:
        requests = tables.requests
        async with self.engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        update(requests)
                        .where(requests.c.uuid == request_uuid, _live(now))
                        .values(
                            status=status,
                            processed_at=now,
                            updated_at=now,
                            device_id=device_id,
                            reason=reason,
                            responder_ip=None if responder_ip is None else responder_ip[:64],
                        )
                        .returning(*requests.c)
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _request(row)

    async def withdraw_request(self, request_uuid: str, now: datetime) -> ApprovalRequest | None:
        requests = tables.requests
        async with self.engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        update(requests)
                        .where(requests.c.uuid == request_uuid, requests.c.status == "pending")
                        .values(status="withdrawn", processed_at=now, updated_at=now)
                        .returning(*requests.c)
                    )
                )
                .mappings()
                .first()
            )
        return None if row is None else _request(row)

    async def pending_requests_for(self, authy_id: int, now: datetime) -> list[ApprovalRequest]:
        requests = tables.requests
        async with self.engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(requests)
                        .where(requests.c.authy_id == authy_id, _live(now))
                        .order_by(requests.c.created_at)
                    )
                )
                .mappings()
                .all()
            )
        return [_request(row) for row in rows]

    async def prune(self, now: datetime) -> None:
        requests, used, codes = tables.requests, tables.used_tokens, tables.email_codes
        cutoff = now - RETENTION
        finished_at = func.coalesce(requests.c.processed_at, requests.c.expires_at)
        async with self.engine.begin() as conn:
            await conn.execute(delete(requests).where(finished_at < cutoff))
            await conn.execute(delete(used).where(used.c.expires_at < now))
            await conn.execute(delete(codes).where(codes.c.expires_at < now))
