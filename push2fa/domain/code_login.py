"""Answering a login challenge with a code instead of the phone: one decision, one
completion, whichever way the answer came.

A recovery code is spent in the same transaction that decides and uses the challenge, so
it is never spent unless the login happens. The challenge goes straight from pending to
consumed: no "approved" event reaches the waiting page, so the page never races this
request with a completion of its own. If the phone approved first, the push's approval is
used instead and the code is left unspent.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.authy.errors import AuthyError
from push2fa.domain import challenges, protection, recovery_codes
from push2fa.models import ChallengeStatus, LoginChallenge, User, utcnow
from push2fa.services import Services

RECOVERY = "recovery"
APP_CODE = "totp"

WRONG = "wrong"  # the code is not right: a failed attempt, counted
LOCKED = "locked"  # app codes are not taken while the second factor is locked
GONE = "gone"  # the challenge can no longer be answered (expired, cancelled, used)
UNAVAILABLE = "unavailable"  # the push service could not check an app code


@dataclass(frozen=True)
class CodeAnswer:
    """The consumed challenge and the factor that made it, or why there is none."""

    consumed: LoginChallenge | None
    second_factor: str = ""
    problem: str = ""
    detail: str = ""
    current: LoginChallenge | None = None  # the challenge as it stands after the answer


async def answer(
    db: AsyncSession,
    svc: Services,
    challenge: LoginChallenge,
    user: User,
    kind: str,
    code: str,
) -> CodeAnswer:
    """Answer `challenge` (bound to this browser) for `user` with a `kind` code."""
    code = code.strip()
    # Read now: a rolled-back answer expires the loaded objects.
    public_id, user_id = challenge.public_id, user.id
    spend = None
    if kind == APP_CODE:
        # A locked second factor takes no more app codes: they are short enough to guess,
        # and the lock is what bounds the guesses. Recovery codes (50 bits) still work.
        if user.second_factor_locked_at is not None:
            return CodeAnswer(None, problem=LOCKED)
        if user.authy_id is None:
            return CodeAnswer(None, problem=GONE)
        try:
            ok = code.isdigit() and await svc.push_client().verify_token(user.authy_id, code)
        except AuthyError as exc:
            return CodeAnswer(None, problem=UNAVAILABLE, detail=exc.message)
        if not ok:
            return await _wrong(db, svc, user_id, kind)
    else:

        async def spend_code() -> bool:
            return await recovery_codes.spend(db, svc.settings, user_id, code)

        spend = spend_code
    consumed = await challenges.answer_at_once(
        db, svc.realtime, public_id, user_id, by=kind, spend=spend
    )
    if consumed is not None:
        return CodeAnswer(consumed, kind)
    current = await challenges.by_public_id(db, public_id)
    if current is None:
        return CodeAnswer(None, problem=GONE)
    if current.status == ChallengeStatus.APPROVED:
        # The phone answered first: that approval makes the login, the code stays unspent.
        used = await challenges.consume(db, svc.realtime, public_id, user_id)
        if used is not None:
            return CodeAnswer(used, "push")
    if current.status == ChallengeStatus.PENDING and current.expires_at > utcnow() and spend:
        return await _wrong(db, svc, user_id, kind)  # the UPDATE won, the code did not
    return CodeAnswer(None, problem=GONE, detail=current.status, current=current)


async def _wrong(db: AsyncSession, svc: Services, user_id: int, kind: str) -> CodeAnswer:
    await protection.record_failure(db, svc.settings, user_id, kind, svc.realtime)
    return CodeAnswer(None, problem=WRONG)
