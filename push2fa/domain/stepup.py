"""Sensitive changes: turning push 2FA off, making new recovery codes, changing the password.

On an account with push 2FA each needs a second factor given in this session within the
last few minutes (a push, a recovery code or an app code), never the password alone: a
stolen cookie plus a known password must not be enough to remove the phone. Each change
is mailed to the owner. Accounts without 2FA keep the password for a password change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quart import session
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa import services
from push2fa.authy.errors import AuthyError
from push2fa.config import Settings
from push2fa.domain import audit, notices, recovery_codes, sessions, trusted_browsers
from push2fa.domain.login_flow import SESSION_KEY, PushOutcome, request_context, send_push
from push2fa.domain.passwords import hash_password, verify_password
from push2fa.models import ChallengePurpose, User, utcnow


class SecondFactorNeeded(PermissionError):
    """A sensitive change was attempted without a fresh second factor."""


def needs_second_factor(user: User) -> bool:
    return user.push_enabled and not sessions.is_fresh(user)


def _require_second_factor(user: User) -> None:
    if needs_second_factor(user):
        raise SecondFactorNeeded(user.id)


async def ask_phone(
    db: AsyncSession, user: User, purpose: ChallengePurpose, next_path: str
) -> PushOutcome:
    """Send a confirmation push (or let the waiting page take a code) and bind it to this
    browser's session; its approval makes the session fresh, or (DISABLE) turns 2FA off."""
    outcome = await send_push(db, user, request_context(next_path=next_path), purpose)
    if outcome.challenge is not None:
        session[SESSION_KEY] = outcome.challenge.public_id
    return outcome


@dataclass(frozen=True)
class FormProblem:
    field: str
    message: str


async def change_password(
    db: AsyncSession, settings: Settings, user: User, current: str, new: str
) -> FormProblem | None:
    """Change the password; every session ends but this browser's, which starts anew, and
    trusted browsers are forgotten. The new password must differ from the current one (a
    forced change after "this wasn't me" is pointless otherwise). None when done."""
    _require_second_factor(user)
    rounds = settings.bcrypt_rounds
    if not await verify_password(current, user.password_hash, rounds):
        return FormProblem("current", "That is not your current password.")
    if await verify_password(new, user.password_hash, rounds):
        return FormProblem("password", "Choose a password different from your current one.")
    await _set_password(db, user, await hash_password(new, rounds))
    audit.record(db, "password.changed", user.id)
    await sessions.restart(db, user, reason="password_changed")
    notices.sensitive_change(settings, user, "Your password was changed")
    return None


async def _set_password(db: AsyncSession, user: User, new_hash: str, **also: Any) -> None:
    """A new password, however it was chosen: the old one stops working, a forced change is
    done, and every trusted browser is forgotten (the security page lists none)."""
    await db.execute(
        update(User)
        .where(User.id == user.id)
        .values(
            password_hash=new_hash, password_changed_at=utcnow(), must_change_password=False, **also
        )
    )
    await trusted_browsers.revoke(db, user.id)


async def reset_password(db: AsyncSession, settings: Settings, user: User, new: str) -> None:
    """A password chosen through the e-mailed link: proves the mailbox, so the failure lock
    starts over; every session and trusted browser of the account ends. Commits."""
    new_hash = await hash_password(new, settings.bcrypt_rounds)
    await _set_password(db, user, new_hash, failed_attempts=0, second_factor_locked_at=None)
    await sessions.end(db, user.id, reason="password_reset")
    audit.record(db, "password.reset", user.id)
    await db.commit()


async def regenerate_codes(db: AsyncSession, settings: Settings, user: User) -> list[str]:
    """New recovery codes (the old ones stop working). Commits."""
    _require_second_factor(user)
    codes = await recovery_codes.regenerate(db, settings, user.id)
    notices.sensitive_change(settings, user, "New recovery codes were made")
    return codes


async def disable_push(db: AsyncSession, settings: Settings, user: User, proof: str) -> None:
    """Forget the device here and at the push service. `proof` is the second factor just
    given (a fresh session, or the DISABLE push or code that calls this). A push-service
    failure is logged but does not keep 2FA on. Commits."""
    authy_id = user.authy_id
    await trusted_browsers.revoke(db, user.id)
    await recovery_codes.void(db, user.id)  # turning 2FA on again shows a fresh set
    await db.execute(
        update(User).where(User.id == user.id).values(authy_id=None, push_enabled_at=None)
    )
    audit.record(db, "twofa.disabled", user.id, proof=proof)
    await db.commit()
    notices.sensitive_change(settings, user, "Push two-factor login was turned off")
    if authy_id is not None:
        try:
            await services.current().push_client().delete_user(authy_id)
        except AuthyError as exc:
            audit.record(db, "twofa.delete_failed", user.id, error_code=exc.error_code or "-")
            await db.commit()


async def disable_push_now(db: AsyncSession, settings: Settings, user: User) -> None:
    """Turn 2FA off from a session with a fresh second factor."""
    _require_second_factor(user)
    await disable_push(db, settings, user, proof="fresh_session")
