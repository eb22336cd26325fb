"""Sending a push for a challenge, and starting the push step of a login.

A push is two writes around one remote call: the challenge row first (so the answer always
has somewhere to land), then the approval request, then its uuid. If the push service
fails, the challenge is cancelled through the state machine: nothing is left half-done.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from quart import flash, redirect, request, session, url_for
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.wrappers import Response as WerkzeugResponse

from push2fa import audit, challenges, services
from push2fa.authy.errors import AuthyError
from push2fa.models import ChallengePurpose, LoginChallenge, User, utcnow
from push2fa.useragent import describe

log = logging.getLogger("push2fa.push")

SESSION_KEY = "challenge"
PUSH_FAILED = (
    "We could not send the push to your phone right now ({why}). Please try again in a moment."
)


def request_context(remember: bool = False, next_path: str = "/") -> challenges.Context:
    return challenges.Context(
        ip=request.remote_addr or "",
        user_agent=request.headers.get("User-Agent", ""),
        remember=remember,
        next_path=next_path,
    )


def push_message(purpose: ChallengePurpose) -> str:
    name = services.settings().authy_app_name
    if purpose == ChallengePurpose.DISABLE:
        return f"Turn off two-factor login for {name}?"
    return f"Log in to {name}?"


def push_details(user: User, challenge: LoginChallenge) -> dict[str, str]:
    """What the phone shows, so the user can tell their own login from someone else's."""
    return {
        "Username": user.username,
        "IP address": challenge.ip or "unknown",
        "Browser": describe(challenge.user_agent),
        "Time": challenge.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
    }


async def send_push(
    db: AsyncSession, user: User, context: challenges.Context, purpose: ChallengePurpose
) -> tuple[LoginChallenge, str | None]:
    """Create a challenge and push it. Returns (challenge, None) or (challenge, why it
    failed) — in which case the challenge has been cancelled."""
    svc = services.current()
    challenge = await challenges.create(db, user, context, svc.settings.challenge_ttl, purpose)
    try:
        uuid = await svc.push_client().create_approval_request(
            challenge.authy_id,
            push_message(purpose),
            details=push_details(user, challenge),
            hidden_details={"challenge": challenge.public_id},
            seconds_to_expire=svc.settings.challenge_ttl,
        )
    except AuthyError as exc:
        log.warning("push to user %s failed: %s", user.id, exc)
        await challenges.cancel(db, svc.realtime, challenge.id, by="server", reason="push_failed")
        audit.record(db, "push.failed", user.id, error_code=exc.error_code or "-")
        await db.commit()
        return challenge, exc.message if exc.status and exc.status < 500 else "service unavailable"
    await challenges.attach_provider(db, challenge, uuid, svc.settings.status_poll_delay)
    return challenge, None


async def begin_push_login(
    db: AsyncSession, user: User, *, remember: bool, next_path: str
) -> WerkzeugResponse:
    """Password accepted: push to the phone and send the browser to the waiting page."""
    context = request_context(remember=bool(remember), next_path=next_path)
    challenge, failure = await send_push(db, user, context, ChallengePurpose.LOGIN)
    if failure is not None:
        await flash(PUSH_FAILED.format(why=failure), "danger")
        return redirect(url_for("auth.login", next=next_path), 303)
    # A fresh session, bound to this challenge only: nothing else can join its room or
    # complete it, and nothing from before the password step survives.
    session.clear()
    session[SESSION_KEY] = challenge.public_id
    return redirect(url_for("twofa.wait"), 303)


async def recent_push_count(db: AsyncSession, user_id: int, window: timedelta) -> int:
    """Pushes sent to `user_id` within `window`: what resend limits count."""
    since = utcnow() - window
    rows = await db.execute(
        select(func.count(LoginChallenge.id)).where(
            LoginChallenge.user_id == user_id, LoginChallenge.created_at >= since
        )
    )
    return int(rows.scalar_one())
