"""Sending a push for a challenge, and starting the push step of a login.

A push is two writes around one remote call: the challenge row first (so the answer always
has somewhere to land), then the approval request, then its uuid. If the push service
fails, the challenge is cancelled through the state machine: nothing is left half-done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from quart import flash, redirect, request, session, url_for
from sqlalchemy.ext.asyncio import AsyncSession
from werkzeug.wrappers import Response as WerkzeugResponse

from push2fa import audit, challenges, protection, services
from push2fa.authy.errors import AuthyError
from push2fa.models import ChallengePurpose, LoginChallenge, User, utcnow
from push2fa.twofa import matching
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


@dataclass(frozen=True)
class PushOutcome:
    """A push that went out (challenge), or why none did (problem, for the user)."""

    challenge: LoginChallenge | None
    problem: str | None = None


def _when(moment: datetime) -> str:
    minutes = max(1, round((moment - utcnow()).total_seconds() / 60))
    return f"in {minutes} minute{'s' if minutes != 1 else ''} ({moment:%H:%M} UTC)"


def verdict_message(verdict: protection.PushVerdict) -> str:
    if verdict.reason == "locked":
        return (
            "Two-factor login for this account is locked after too many failed attempts. "
            "Reset your password by e-mail to unlock it."
        )
    if verdict.reason == "reported" and verdict.retry_at is not None:
        return (
            "A login to this account was reported as not yours, so no push is sent "
            f"until {_when(verdict.retry_at)}."
        )
    assert verdict.retry_at is not None
    return (
        "Too many requests went to your phone without an approval. "
        f"The next one can be sent {_when(verdict.retry_at)}."
    )


async def send_push(
    db: AsyncSession,
    user: User,
    context: challenges.Context,
    purpose: ChallengePurpose,
    *,
    trusted_browser: bool = False,
) -> PushOutcome:
    """Create a challenge and push it, within the account's push budget. If the push
    service fails, the challenge is cancelled and the outcome says why."""
    svc = services.current()
    settings = svc.settings
    verdict = await protection.push_verdict(db, settings, user)
    if not verdict.allowed:
        audit.record(db, "push.refused", user.id, why=verdict.reason)
        await db.commit()
        return PushOutcome(None, verdict_message(verdict))
    code = None
    if await matching.required(db, settings, user, context.ip, context.user_agent, trusted_browser):
        code = matching.new_code()
    challenge = await challenges.create(
        db, user, context, settings.challenge_ttl, purpose, match_code=code
    )
    assert challenge.authy_id is not None
    details = push_details(user, challenge)
    hidden = {"challenge": challenge.public_id}
    if code is not None:
        if matching.enforced(settings):
            hidden["match_choices"] = ",".join(matching.choices_for(code))
        else:
            details["Code"] = code
    try:
        uuid = await svc.push_client().create_approval_request(
            challenge.authy_id,
            push_message(purpose),
            details=details,
            hidden_details=hidden,
            seconds_to_expire=settings.challenge_ttl,
        )
    except AuthyError as exc:
        log.warning("push to user %s failed: %s", user.id, exc)
        await challenges.cancel(db, svc.realtime, challenge.id, by="server", reason="push_failed")
        audit.record(db, "push.failed", user.id, error_code=exc.error_code or "-")
        await db.commit()
        why = exc.message if exc.status and exc.status < 500 else "service unavailable"
        return PushOutcome(None, PUSH_FAILED.format(why=why))
    await challenges.attach_provider(db, challenge, uuid, settings.status_poll_delay)
    return PushOutcome(challenge)


async def begin_push_login(
    db: AsyncSession,
    user: User,
    *,
    remember: bool,
    next_path: str,
    trusted_browser: bool,
    has_passkey: bool = False,
) -> WerkzeugResponse:
    """Password accepted: push to the phone and send the browser to the waiting page.
    With no phone, or no push allowed, an account with a passkey waits for the passkey."""
    context = request_context(remember=bool(remember), next_path=next_path)
    outcome = PushOutcome(None)
    if user.authy_id is not None:
        outcome = await send_push(
            db, user, context, ChallengePurpose.LOGIN, trusted_browser=trusted_browser
        )
    no_push = None
    if outcome.challenge is None and has_passkey:
        no_push = outcome.problem
        ttl = services.settings().challenge_ttl
        pushless = await challenges.create(db, user, context, ttl, push=False)
        outcome = PushOutcome(pushless)
    if outcome.challenge is None:
        await flash(outcome.problem or "", "danger")
        return redirect(url_for("auth.login", next=next_path), 303)
    # A fresh session, bound to this challenge only: nothing else can join its room or
    # complete it, and nothing from before the password step survives.
    session.clear()
    session[SESSION_KEY] = outcome.challenge.public_id
    if no_push:
        await flash(no_push, "warning")
    return redirect(url_for("twofa.wait"), 303)
