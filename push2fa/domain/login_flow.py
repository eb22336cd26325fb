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

from push2fa import services
from push2fa.authy.errors import AuthyError
from push2fa.config import MAX_CHALLENGE_TTL
from push2fa.domain import audit, challenges, familiarity, number_matching, push_budget
from push2fa.domain.useragent import describe
from push2fa.models import ChallengePurpose, LoginChallenge, User, utcnow

log = logging.getLogger("push2fa.push")

SESSION_KEY = "challenge"
REFUSED_KEY = "push_refused"
# A challenge answered by code only lives as long as the rules allow (NIST: 10 minutes):
# the user may have to find the printed recovery codes first.
CODE_ONLY_TTL = MAX_CHALLENGE_TTL
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
    refused: push_budget.PushVerdict | None = None


def _when(moment: datetime) -> str:
    """E.g. "in 3 minutes (14:05 UTC)"; read after "can be sent", never after "until"."""
    minutes = max(1, round((moment - utcnow()).total_seconds() / 60))
    return f"in {minutes} minute{'s' if minutes != 1 else ''} ({moment:%H:%M} UTC)"


def verdict_message(verdict: push_budget.PushVerdict) -> str:
    """Why no push went out, said plainly, with the way in that still works."""
    if verdict.reason == push_budget.LOCKED:
        return (
            "Two-factor login for this account is locked after too many failed attempts, so "
            "no push was sent. Log in with a recovery code, or reset your password by e-mail."
        )
    if verdict.reason == push_budget.REPORTED and verdict.retry_at is not None:
        return (
            "A login to this account was reported as not yours, so pushes are paused. "
            f"The next one can be sent {_when(verdict.retry_at)}. You can log in with a "
            "recovery code or a code from the app."
        )
    return (
        "Too many requests went to your phone without an approval, so no more are sent "
        "until you log in with a recovery code or a code from the app, or confirm by e-mail."
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
    verdict = await push_budget.reserve(db, settings, user.id)
    if not verdict.allowed:
        audit.record(db, "push.refused", user.id, why=verdict.reason)
        await db.commit()
        return PushOutcome(None, verdict_message(verdict), verdict)
    code = None
    if await number_matching.required(
        db, settings, user, context.ip, context.user_agent, trusted_browser
    ):
        code = number_matching.new_code()
    challenge = await challenges.create(
        db, user, context, settings.challenge_ttl, purpose, match_code=code
    )
    assert challenge.authy_id is not None
    details = push_details(user, challenge)
    details.update(await familiarity.describe(db, user.id, context.ip, context.user_agent))
    hidden = {"challenge": challenge.public_id}
    if code is not None:
        if number_matching.enforced(settings):
            hidden["match_choices"] = ",".join(number_matching.choices_for(code))
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
        await push_budget.refund(db, user.id)
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
    When no push may go out (budget spent, "this wasn't me" pause, lock), or the account has
    no phone, the browser still gets a challenge of its own, answered with a passkey, a
    recovery code or an app code: the real user with the right password is never left
    without a way in."""
    context = request_context(remember=bool(remember), next_path=next_path)
    outcome = PushOutcome(None)
    if user.authy_id is not None:
        outcome = await send_push(
            db, user, context, ChallengePurpose.LOGIN, trusted_browser=trusted_browser
        )
    challenge = outcome.challenge
    if challenge is None:
        if outcome.refused is None and not has_passkey:  # the push service failed
            await flash(outcome.problem or "", "danger")
            return redirect(url_for("auth.login", next=next_path), 303)
        ttl = CODE_ONLY_TTL if outcome.refused is not None else services.settings().challenge_ttl
        challenge = await challenges.create(
            db, user, context, ttl, ChallengePurpose.LOGIN, push=user.authy_id is not None
        )
    await _cancel_replaced(db, user, challenge)
    # A fresh session, bound to this challenge only: nothing else can join its room or
    # complete it, and nothing from before the password step survives.
    session.clear()
    session[SESSION_KEY] = challenge.public_id
    if outcome.refused is not None:
        session[REFUSED_KEY] = outcome.refused.reason
    if outcome.problem:
        await flash(outcome.problem, "warning")
    return redirect(url_for("twofa.wait"), 303)


async def _cancel_replaced(db: AsyncSession, user: User, challenge: LoginChallenge) -> None:
    """A new login from this browser replaces the one it was waiting for: that request
    leaves the phone now instead of staying pickable until it expires."""
    previous = await challenges.by_public_id(db, session.get(SESSION_KEY))
    if previous is not None and previous.id != challenge.id and previous.user_id == user.id:
        await challenges.cancel(
            db, services.current().realtime, previous.id, by="browser", reason="replaced"
        )


def refused_reason(challenge: LoginChallenge) -> str | None:
    """Why the bound challenge got no push (it waits for a code), or None."""
    reason = session.get(REFUSED_KEY)
    if not isinstance(reason, str) or challenge.provider_uuid is not None:
        return None
    return reason
