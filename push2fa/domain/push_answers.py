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


class UnknownRequest(LookupError):
    """No challenge has both the request id and the device a callback names."""


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
    reason = _denial_reason(reason)
    changed = await challenges.decide(db, svc.realtime, challenge.id, status, by=by, reason=reason)
    await _count_denial(db, svc, changed, reason, by)
    return changed


async def apply_callback(
    db: AsyncSession,
    svc: Services,
    provider_uuid: str,
    authy_id: int,
    status: ChallengeStatus,
    reason: str | None,
    by: str,
) -> LoginChallenge | None:
    """Apply the answer a callback carries to the challenge it names (request id and
    device); returns it if this call changed it, raises UnknownRequest if none matches.

    The common case, a live challenge approved with the right number or denied, is one
    UPDATE; anything else is read and decided by `apply_answer`, with the same outcome."""
    if status == ChallengeStatus.APPROVED:
        pick = number_matching.pick_of(reason) if number_matching.enforced(svc.settings) else None
        changed = await challenges.decide_named(
            db, svc.realtime, provider_uuid, authy_id, status, by=by, pick=pick
        )
    else:
        denial = _denial_reason(reason)
        changed = await challenges.decide_named(
            db, svc.realtime, provider_uuid, authy_id, status, by=by, reason=denial
        )
        await _count_denial(db, svc, changed, denial, by)
    if changed is not None:
        return changed
    challenge = await challenges.by_provider(db, provider_uuid, authy_id)
    if challenge is None:
        raise UnknownRequest
    return await apply_answer(db, svc, challenge, status, reason, by)


def _denial_reason(reason: str | None) -> str | None:
    """The reasons a denial keeps; anything else the phone says is dropped."""
    return reason if reason in {REPORTED, WRONG_NUMBER} else None


async def _count_denial(
    db: AsyncSession, svc: Services, changed: LoginChallenge | None, reason: str | None, by: str
) -> None:
    """A denial this call made is a failed attempt, or with "reported", "this wasn't me"."""
    if changed is None or changed.status != ChallengeStatus.DENIED:
        return
    if reason == REPORTED:
        await protection.report_not_me(db, svc.settings, svc.realtime, changed.user_id, by)
    else:
        kind = "wrong_number" if reason == WRONG_NUMBER else "push_denied"
        await protection.record_failure(db, svc.settings, changed.user_id, kind, svc.realtime)
