"""What the phone's answer means, wherever it comes from (webhook or status poll).

An approval with the wrong number, or none when matching is required, is a denial; a
denial counts as a failed attempt; a denial with the reason "reported" is "this wasn't
me". Every resulting status change still goes through the state machine.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from push2fa.domain import challenges, number_matching, protection
from push2fa.models import ChallengeStatus, LoginChallenge
from push2fa.services import Services

REPORTED = "reported"
WRONG_NUMBER = "wrong_number"


async def apply_answer(
    db: AsyncSession,
    svc: Services,
    challenge: LoginChallenge,
    status: ChallengeStatus,
    reason: str | None,
    by: str,
) -> LoginChallenge | None:
    """Apply the phone's answer to `challenge`; returns it if this call changed it."""
    if (
        status == ChallengeStatus.APPROVED
        and number_matching.enforced(svc.settings)
        and not number_matching.picked_right(challenge, reason)
    ):
        status, reason = ChallengeStatus.DENIED, WRONG_NUMBER
    if status == ChallengeStatus.APPROVED:
        return await challenges.decide(db, svc.realtime, challenge.id, status, by=by)
    reason = reason if reason in {REPORTED, WRONG_NUMBER} else None
    changed = await challenges.decide(db, svc.realtime, challenge.id, status, by=by, reason=reason)
    if changed is None or changed.status != ChallengeStatus.DENIED:
        return changed
    if reason == REPORTED:
        await protection.report_not_me(db, svc.settings, svc.realtime, challenge.user_id, by)
    else:
        kind = "wrong_number" if reason == WRONG_NUMBER else "push_denied"
        await protection.record_failure(db, svc.settings, challenge.user_id, kind, svc.realtime)
    return changed
