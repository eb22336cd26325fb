"""Number matching (CISA, NIST SP 800-63B-4): the login page shows a two-digit code and
the phone must pick it from three, so a push approved by reflex, or by a user who is not
looking at this login, fails.

The phone gets the three choices in the request's hidden details; the answer stays on the
server. The phone reports its pick in the callback's `reason`, and the server decides.
The real Authy app cannot take input, so with real Authy the code is only shown in the
push for the user to compare (and the README says so).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.config import Settings
from push2fa.models import AuditEvent, ChallengeStatus, LoginChallenge, User, utcnow

CHOICES = 3


def new_code() -> str:
    return str(secrets.randbelow(90) + 10)


def choices_for(code: str) -> list[str]:
    """The answer and two different decoys, in random order."""
    picks = {code}
    while len(picks) < CHOICES:
        picks.add(new_code())
    ordered = list(picks)
    secrets.SystemRandom().shuffle(ordered)
    return ordered


def enforced(settings: Settings) -> bool:
    """True when the phone can answer with a pick (the emulator); False with real Authy."""
    return settings.uses_emulator


def pick_of(reason: str | None) -> str:
    """The number the phone picked, as its callback's reason carries it."""
    return (reason or "").strip()


def picked_right(challenge: LoginChallenge, picked: str | None) -> bool:
    if challenge.match_code is None:
        return True
    return hmac.compare_digest(pick_of(picked).encode(), challenge.match_code.encode())


async def is_risky(
    db: AsyncSession, settings: Settings, user: User, ip: str, user_agent: str, trusted: bool
) -> bool:
    """A login from a browser we have not seen succeed before, or soon after a denial."""
    window = utcnow() - timedelta(seconds=settings.push_budget_window)
    denied = (
        await db.execute(
            select(LoginChallenge.id)
            .where(
                LoginChallenge.user_id == user.id,
                LoginChallenge.status == ChallengeStatus.DENIED.value,
                LoginChallenge.decided_at > window,
            )
            .limit(1)
        )
    ).first()
    if denied is not None:
        return True
    if trusted:
        return False
    seen = (
        await db.execute(
            select(AuditEvent.id)
            .where(
                AuditEvent.user_id == user.id,
                AuditEvent.event == "login.succeeded",
                AuditEvent.ip == ip[:64],
                AuditEvent.user_agent == user_agent[:512],
            )
            .limit(1)
        )
    ).first()
    return seen is None


async def required(
    db: AsyncSession, settings: Settings, user: User, ip: str, user_agent: str, trusted: bool
) -> bool:
    if settings.number_matching == "off":
        return False
    if settings.number_matching == "always":
        return True
    return await is_risky(db, settings, user, ip, user_agent, trusted)
