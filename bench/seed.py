"""Waiting browsers without the password step: users, enrolled phones and pending
challenges written straight into the app's database, and each browser's session cookie
minted with the app's own session serializer.

Logging N browsers in through the password form would cost N bcrypt hashes and measure
bcrypt, not the push path, so the password step is not part of these measurements (the
login storm measures it separately). Everything else is real: each phone is enrolled in
the emulator with a registration JWT exactly as the QR code carries it, each challenge has
a real approval request in the emulator (so the safety-net poll finds it pending), and
each row is what `challenges.create` + `attach_provider` would have written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
from sqlalchemy import insert, update

from push2fa.authy.client import AuthyClient
from push2fa.config import Settings
from push2fa.db import Database
from push2fa.domain import challenges, number_matching
from push2fa.domain.enrollment import ENROLLMENT_TTL, registration_token
from push2fa.domain.login_flow import SESSION_KEY
from push2fa.models import (
    ChallengePurpose,
    ChallengeStatus,
    Enrollment,
    LoginChallenge,
    User,
    utcnow,
)
from push2fa.web.app import create_app

SESSION_COOKIE = "push2fa_session"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) push2fa-bench"
CONCURRENCY = 32
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Waiter:
    """One waiting login page: its challenge, its phone and its browser's cookie."""

    public_id: str
    user_id: int
    authy_id: int
    uuid: str
    cookie: str  # the value of the push2fa_session cookie
    match_code: str  # number matching: what the phone must pick (it goes in the callback)

    @property
    def cookie_header(self) -> str:
        return f"{SESSION_COOKIE}={self.cookie}"


class CookieMinter:
    """Signs session cookies with the app's own serializer (same secret, same salt)."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        app = create_app(overrides)
        interface: Any = app.session_interface
        serializer = interface.get_signing_serializer(app)
        if serializer is None:
            raise RuntimeError("the app has no secret key: cannot sign session cookies")
        self.serializer = serializer

    def for_challenge(self, public_id: str) -> str:
        return str(self.serializer.dumps({SESSION_KEY: public_id}))


async def _bounded(items: Iterable[T], work: Callable[[T], Awaitable[R]]) -> list[R]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: T) -> R:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def create_users(db: Database, prefix: str, count: int, password_hash: str) -> list[int]:
    rows = [
        {
            "username": f"{prefix}{i}",
            "email": f"{prefix}{i}@bench.example",
            "password_hash": password_hash,
        }
        for i in range(count)
    ]
    ids: list[int] = []
    async with db.session() as session:
        for start in range(0, count, 1000):
            result = await session.execute(
                insert(User).returning(User.id, sort_by_parameter_order=True),
                rows[start : start + 1000],
            )
            ids.extend(result.scalars())
        await session.commit()
    return ids


async def enrol_phones(
    db: Database, settings: Settings, emulator_api: str, user_ids: list[int]
) -> dict[int, int]:
    """Scan each user's registration QR token with the emulator; store the authy_id."""
    now = utcnow().replace(microsecond=0)

    async def enrol(http: aiohttp.ClientSession, user_id: int) -> tuple[int, int]:
        enrollment = Enrollment(created_at=now, expires_at=now + ENROLLMENT_TTL)
        token = registration_token(settings, user_id, enrollment)
        async with http.post(
            f"{emulator_api}/devices",
            json={"token": token},
            headers={"X-Authy-API-Key": settings.authy_api_key},
        ) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 201:
                raise RuntimeError(f"enrolment of user {user_id} failed: {resp.status} {body}")
        return user_id, int(body["authy_id"])

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        pairs = await _bounded(user_ids, lambda uid: enrol(http, uid))
    authy_ids = dict(pairs)
    async with db.session() as session:
        await session.execute(
            update(User),
            [{"id": uid, "authy_id": aid, "push_enabled_at": now} for uid, aid in pairs],
        )
        await session.commit()
    return authy_ids


async def open_challenges(
    db: Database,
    settings: Settings,
    minter: CookieMinter,
    phones: dict[int, int],
    ttl: int,
) -> list[Waiter]:
    """One pending challenge per user, pushed to their phone, and the browser's cookie."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    planned = [
        (uid, aid, challenges.new_public_id(), number_matching.new_code())
        for uid, aid in phones.items()
    ]

    async def push(client: AuthyClient, plan: tuple[int, int, str, str]) -> tuple[str, str]:
        uid, aid, public_id, code = plan
        uuid = await client.create_approval_request(
            aid,
            f"Log in to {settings.authy_app_name}?",
            details={"Username": f"user {uid}", "IP address": "127.0.0.1", "Browser": "bench"},
            hidden_details={
                "challenge": public_id,
                "match_choices": ",".join(number_matching.choices_for(code)),
            },
            seconds_to_expire=ttl,
        )
        return public_id, uuid

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        client = AuthyClient(settings.push_api_url, settings.authy_api_key, http, timeout=30)
        uuids = dict(await _bounded(planned, lambda plan: push(client, plan)))
    next_poll = now + timedelta(seconds=settings.status_poll_delay)
    rows = [
        {
            "public_id": public_id,
            "user_id": uid,
            "purpose": ChallengePurpose.LOGIN.value,
            "status": ChallengeStatus.PENDING.value,
            "authy_id": aid,
            "provider_uuid": uuids[public_id],
            "created_at": now,
            "expires_at": expires,
            "next_poll_at": next_poll,
            "poll_count": 0,
            "ip": "127.0.0.1",
            "user_agent": USER_AGENT,
            "remember": False,
            "next_path": "/",
            "match_code": code,
        }
        for uid, aid, public_id, code in planned
    ]
    async with db.session() as session:
        for start in range(0, len(rows), 1000):
            await session.execute(insert(LoginChallenge), rows[start : start + 1000])
        await session.commit()
    return [
        Waiter(public_id, uid, aid, uuids[public_id], minter.for_challenge(public_id), code)
        for uid, aid, public_id, code in planned
    ]


async def seed_waiters(
    settings: Settings,
    minter: CookieMinter,
    emulator_api: str,
    count: int,
    *,
    prefix: str,
    password_hash: str,
    ttl: int,
) -> list[Waiter]:
    db = Database(settings.database_url)
    try:
        user_ids = await create_users(db, prefix, count, password_hash)
        phones = await enrol_phones(db, settings, emulator_api, user_ids)
        return await open_challenges(db, settings, minter, phones, ttl)
    finally:
        await db.dispose()


async def seed_password_users(
    settings: Settings, emulator_api: str, count: int, *, prefix: str, password_hash: str
) -> list[str]:
    """Users who log in with a password (the bcrypt storm); their phones are enrolled, so
    each login goes on to send a real push, as it would in production."""
    db = Database(settings.database_url)
    try:
        user_ids = await create_users(db, prefix, count, password_hash)
        await enrol_phones(db, settings, emulator_api, user_ids)
    finally:
        await db.dispose()
    return [f"{prefix}{i}" for i in range(count)]
