"""Who may listen to what: the Socket.IO connect-time decision, made from the browser's
signed cookies only. Clients never name rooms; a forged or foreign cookie gets nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from itsdangerous import BadSignature
from quart import Quart
from quart_auth import QuartAuth

from push2fa import services
from push2fa.domain import challenges, sessions
from push2fa.domain import enrollment as enrol
from push2fa.domain.login_flow import SESSION_KEY
from push2fa.realtime import hub
from push2fa.realtime.rooms import CHALLENGE_EVENT, ENROLLMENT_EVENT, challenge_room, user_room

Initial = list[tuple[str, Any]]

# How many sockets may read the database at connect at once, of the pool's 15 connections.
# When thousands of pages (re)connect together (a restart, a network blip), their reads
# otherwise took every pooled connection: a webhook or a login waited behind the storm,
# and on SQLite each connection opened for it kept a thread with its page cache and
# prepared statements (about 750 KB each, measured at 10,000 waiting pages) for the life
# of the process. A few at a time keep the loop just as busy, since the reads are short.
CONNECT_READS = 4


def _session_data(app: Quart, cookies: Mapping[str, str]) -> dict[str, Any]:
    raw = cookies.get(app.config["SESSION_COOKIE_NAME"])
    serializer = app.session_interface.get_signing_serializer(app)
    if not raw or serializer is None:
        return {}
    max_age = int(app.permanent_session_lifetime.total_seconds())
    try:
        data = serializer.loads(raw, max_age=max_age)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def _auth_id(app: Quart, cookies: Mapping[str, str]) -> str | None:
    extension: QuartAuth = app.extensions["QUART_AUTH"][0]
    token = cookies.get(extension.cookie_name or "")
    return extension.load_token(token, app=app) if token else None


def make_authorizer(app: Quart) -> hub.Authorizer:
    reading = asyncio.Semaphore(CONNECT_READS)

    async def authorize(cookies: Mapping[str, str]) -> tuple[list[str], hub.State]:
        svc: services.Services = app.extensions["push2fa"]
        rooms: list[str] = []
        data = _session_data(app, cookies)
        challenge_id: str | None = None
        user_id: int | None = None
        async with reading, svc.db.session() as db:
            challenge = await challenges.by_public_id(db, data.get(SESSION_KEY))
            if challenge is not None:
                challenge_id = challenge.public_id
                rooms.append(challenge_room(challenge_id))
            # The same check as every request: an ended, idle or expired session, or a
            # login cookie paired with another session's cookie, joins no user room.
            live = await sessions.resolve(
                db, svc.settings, _auth_id(app, cookies), data.get(sessions.BOUND_KEY)
            )
            if live is not None:
                user_id = live.user.id
                rooms.append(user_room(user_id))

        async def state() -> Initial:
            """Read after the socket joined its rooms (see `hub.Realtime`)."""
            initial: Initial = []
            async with reading, svc.db.session() as db:
                if challenge_id is not None:
                    current = await challenges.by_public_id(db, challenge_id)
                    if current is not None:
                        initial.append((CHALLENGE_EVENT, challenges.event_payload(current)))
                if user_id is not None:
                    enrollment = await enrol.latest(db, user_id)
                    if enrollment is not None and enrollment.status != "cancelled":
                        initial.append((ENROLLMENT_EVENT, enrol.event_payload(enrollment)))
            return initial

        return rooms, state

    return authorize
