"""Passkeys and security keys: who may add one, and what makes a WebAuthn answer count.

Every ceremony starts with a challenge the server stores and spends once (a conditional
UPDATE), so a captured answer cannot be replayed even with a passkey that keeps no sign
count (synced passkeys report 0). The answer is checked by ``push2fa.webauthn``, the one
verifier of the product, against the settings' rpId and origin allow-list. A passkey that
completes a login does it through the challenge state machine, like a push approval.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from quart import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from push2fa import mail, webauthn
from push2fa.config import Settings
from push2fa.domain import audit, challenges, protection
from push2fa.models import (
    ChallengePurpose,
    ChallengeStatus,
    LoginChallenge,
    Passkey,
    PasskeyCeremony,
    User,
    utcnow,
)
from push2fa.services import Publisher

CEREMONY_LIFETIME = timedelta(milliseconds=webauthn.TIMEOUT_MS)
MAX_NAME = 80
REGISTER, SECOND_FACTOR, SIGN_IN = "register", "second_factor", "sign_in"


class PasskeyRefused(Exception):
    """A ceremony that does not count; the message is safe to show to the user."""


@dataclass(frozen=True)
class Started:
    """A ceremony the browser now runs: its id (sent back with the answer) and options."""

    ceremony: str
    options: dict[str, Any]


def relying_party(settings: Settings) -> webauthn.RelyingParty:
    return webauthn.RelyingParty.from_settings(
        settings.public_url,
        settings.authy_app_name,
        rp_id=settings.webauthn_rp_id,
        origins=settings.webauthn_origins,
    )


def user_handle(settings: Settings, user_id: int) -> bytes:
    """The account's WebAuthn user handle: stable, opaque, and no database id in clear."""
    return hmac.new(
        settings.secret_key.encode(), f"passkey-user:{user_id}".encode(), "sha256"
    ).digest()


def clean_name(raw: str | None) -> str:
    name = " ".join((raw or "").split())[:MAX_NAME]
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise PasskeyRefused("That name has characters that are not allowed.")
    return name or "Passkey"


async def listed(db: AsyncSession, user_id: int) -> list[Passkey]:
    rows = await db.execute(
        select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)
    )
    return list(rows.scalars().all())


async def count(db: AsyncSession, user_id: int) -> int:
    found = await db.execute(select(func.count(Passkey.id)).where(Passkey.user_id == user_id))
    return int(found.scalar_one())


async def _new_ceremony(
    db: AsyncSession,
    purpose: str,
    *,
    user_id: int | None = None,
    login_challenge: str | None = None,
) -> PasskeyCeremony:
    now = utcnow()
    # Spent and expired ceremonies are worth nothing: clear them as new ones are made.
    await db.execute(delete(PasskeyCeremony).where(PasskeyCeremony.expires_at < now))
    ceremony = PasskeyCeremony(
        id=secrets.token_urlsafe(32),
        purpose=purpose,
        user_id=user_id,
        login_challenge=login_challenge,
        challenge=secrets.token_bytes(32),
        created_at=now,
        expires_at=now + CEREMONY_LIFETIME,
    )
    db.add(ceremony)
    await db.commit()
    return ceremony


async def _spend(db: AsyncSession, ceremony_id: str, purpose: str) -> PasskeyCeremony:
    """Use a ceremony once: the first answer wins, a replay or a late one is refused."""
    if not ceremony_id or len(ceremony_id) > 64:
        raise PasskeyRefused("This passkey request is not valid. Try again.")
    now = utcnow()
    spent = (
        await db.execute(
            update(PasskeyCeremony)
            .where(
                PasskeyCeremony.id == ceremony_id,
                PasskeyCeremony.purpose == purpose,
                PasskeyCeremony.used_at.is_(None),
                PasskeyCeremony.expires_at > now,
            )
            .values(used_at=now)
            .returning(PasskeyCeremony)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    await db.commit()
    if spent is None:
        raise PasskeyRefused("This passkey request has expired or was already used. Try again.")
    return spent


# --- registration --------------------------------------------------------------------


async def begin_registration(db: AsyncSession, settings: Settings, user: User) -> Started:
    """Options to create a new passkey for ``user``; the caller has checked freshness."""
    existing = [webauthn.from_b64url(p.credential_id) for p in await listed(db, user.id)]
    ceremony = await _new_ceremony(db, REGISTER, user_id=user.id)
    options = webauthn.registration_options(
        relying_party(settings),
        challenge=ceremony.challenge,
        user_handle=user_handle(settings, user.id),
        user_name=user.username,
        exclude=existing,
        require_user_verification=False,
        attestation=settings.passkey_attestation,
    )
    return Started(ceremony.id, options)


async def register(
    db: AsyncSession, settings: Settings, user: User, ceremony_id: str, credential: Any, name: str
) -> Passkey:
    """Store the new passkey if the answer is over this user's ceremony; tell the user."""
    label = clean_name(name)
    ceremony = await _spend(db, ceremony_id, REGISTER)
    if ceremony.user_id != user.id:
        raise PasskeyRefused("This passkey request is not valid. Try again.")
    try:
        new = webauthn.verify_registration(
            relying_party(settings),
            credential,
            challenge=ceremony.challenge,
            require_user_verification=False,
        )
    except webauthn.CeremonyRejected as exc:
        raise PasskeyRefused(f"The passkey was not added: {exc}.") from None
    if new.device_type == "multi_device" and not settings.passkeys_allow_synced:
        raise PasskeyRefused(
            "This site accepts only device-bound passkeys and security keys, not synced ones."
        )
    credential_id = webauthn.b64url(new.credential_id)
    taken = await db.execute(select(Passkey.id).where(Passkey.credential_id == credential_id))
    if taken.first() is not None:
        raise PasskeyRefused("That passkey is already registered.")
    passkey = Passkey(
        user_id=user.id,
        credential_id=credential_id,
        public_key=new.public_key,
        sign_count=new.sign_count,
        name=label,
        device_type=new.device_type,
        backed_up=new.backed_up,
        aaguid=str(new.aaguid),
        created_at=utcnow(),
    )
    db.add(passkey)
    try:
        await db.flush()
    except IntegrityError:  # the same passkey registered by a request running alongside
        await db.rollback()
        raise PasskeyRefused("That passkey is already registered.") from None
    audit.record(db, "passkey.added", user.id, passkey=passkey.id, synced=passkey.synced)
    await db.commit()
    _tell(
        settings,
        user,
        "A passkey was added to your push2fa account",
        f"The passkey or security key “{label}” was added to your account. If this was "
        "not you, log in, remove it from your security page and change your password.",
    )
    return passkey


async def rename(db: AsyncSession, user_id: int, passkey_id: int, name: str) -> bool:
    label = clean_name(name)
    done = await db.execute(
        update(Passkey)
        .where(Passkey.id == passkey_id, Passkey.user_id == user_id)
        .values(name=label)
        .returning(Passkey.id)
    )
    changed = done.first() is not None
    if changed:
        audit.record(db, "passkey.renamed", user_id, passkey=passkey_id)
    await db.commit()
    return changed


async def remove(db: AsyncSession, settings: Settings, user: User, passkey_id: int) -> bool:
    """Forget one of the user's passkeys (never another account's); tell the user."""
    gone = (
        await db.execute(
            delete(Passkey)
            .where(Passkey.id == passkey_id, Passkey.user_id == user.id)
            .returning(Passkey.name)
        )
    ).first()
    if gone is None:
        await db.commit()
        return False
    audit.record(db, "passkey.removed", user.id, passkey=passkey_id)
    await db.commit()
    _tell(
        settings,
        user,
        "A passkey was removed from your push2fa account",
        f"The passkey or security key “{gone[0]}” was removed from your account and can no "
        "longer be used to log in. If this was not you, change your password now.",
    )
    return True


def _tell(settings: Settings, user: User, subject: str, text: str) -> None:
    body = f"Hello {user.username},\n\n{text}\n"
    current_app.add_background_task(mail.send_mail, settings, user.email, subject, body)


# --- answers: as a second factor, and as a sign-in ---------------------------------------


async def begin_second_factor(
    db: AsyncSession, settings: Settings, challenge: LoginChallenge
) -> Started:
    """Options to answer a pending login challenge with one of the user's passkeys."""
    if challenge.status != ChallengeStatus.PENDING:
        raise PasskeyRefused("This login request is no longer waiting for an answer.")
    allow = [webauthn.from_b64url(p.credential_id) for p in await listed(db, challenge.user_id)]
    if not allow:
        raise PasskeyRefused("This account has no passkey.")
    ceremony = await _new_ceremony(
        db, SECOND_FACTOR, user_id=challenge.user_id, login_challenge=challenge.public_id
    )
    options = webauthn.authentication_options(
        relying_party(settings),
        challenge=ceremony.challenge,
        allow=allow,
        require_user_verification=False,
    )
    return Started(ceremony.id, options)


async def begin_sign_in(db: AsyncSession, settings: Settings) -> Started:
    """Options for a sign-in with a discoverable passkey: no account named, UV required."""
    ceremony = await _new_ceremony(db, SIGN_IN)
    options = webauthn.authentication_options(
        relying_party(settings), challenge=ceremony.challenge, allow=[]
    )
    return Started(ceremony.id, options)


async def _verify(
    db: AsyncSession,
    settings: Settings,
    ceremony: PasskeyCeremony,
    credential: Any,
    *,
    require_user_verification: bool,
) -> Passkey:
    """The stored passkey that made this answer over this ceremony's challenge."""
    try:
        credential_id = webauthn.b64url(webauthn.credential_id_of(credential))
    except webauthn.CeremonyRejected as exc:
        raise PasskeyRefused(f"The passkey answer was refused: {exc}.") from None
    passkey = (
        await db.execute(select(Passkey).where(Passkey.credential_id == credential_id))
    ).scalar_one_or_none()
    if passkey is None or (ceremony.user_id is not None and passkey.user_id != ceremony.user_id):
        raise PasskeyRefused("That passkey is not registered for this account.")
    try:
        verified = webauthn.verify_assertion(
            relying_party(settings),
            credential,
            challenge=ceremony.challenge,
            credential_id=webauthn.from_b64url(passkey.credential_id),
            public_key=passkey.public_key,
            sign_count=passkey.sign_count,
            require_user_verification=require_user_verification,
        )
    except webauthn.CeremonyRejected as exc:
        raise PasskeyRefused(f"The passkey answer was refused: {exc}.") from None
    if (passkey.synced or verified.backed_up) and not settings.passkeys_allow_synced:
        raise PasskeyRefused("This site accepts only device-bound passkeys and security keys.")
    # Conditional on the count read above: two answers racing cannot both move it.
    moved = await db.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id, Passkey.sign_count == passkey.sign_count)
        .values(sign_count=verified.new_sign_count, last_used_at=utcnow())
        .returning(Passkey.id)
    )
    if moved.first() is None:
        await db.commit()
        raise PasskeyRefused("The passkey answer was refused: it was used at the same time.")
    await db.commit()
    return passkey


async def answer_second_factor(
    db: AsyncSession,
    settings: Settings,
    realtime: Publisher,
    challenge: LoginChallenge,
    ceremony_id: str,
    credential: Any,
) -> LoginChallenge:
    """Approve and consume the bound login challenge with a passkey of its account.

    A refused answer counts as a failed attempt, like a wrong code."""
    ceremony = await _spend(db, ceremony_id, SECOND_FACTOR)
    if ceremony.login_challenge != challenge.public_id or ceremony.user_id != challenge.user_id:
        raise PasskeyRefused("This passkey request is for another login. Try again.")
    user = await db.get(User, challenge.user_id)
    if user is None:
        raise PasskeyRefused("This login request is not valid.")
    if user.second_factor_locked_at is not None:
        raise PasskeyRefused(
            "Two-factor login for this account is locked after too many failed attempts. "
            "Reset your password by e-mail to unlock it."
        )
    try:
        await _verify(db, settings, ceremony, credential, require_user_verification=False)
    except PasskeyRefused:
        await protection.record_failure(db, settings, user.id, "passkey", realtime)
        raise
    return await _approve(db, realtime, challenge)


async def sign_in(
    db: AsyncSession,
    settings: Settings,
    realtime: Publisher,
    ceremony_id: str,
    credential: Any,
    context: challenges.Context,
) -> LoginChallenge:
    """A login by a discoverable passkey with user verification: both factors in one.

    It still goes through a login challenge (created, approved by the passkey, consumed),
    so it is audited and completed like every other login."""
    ceremony = await _spend(db, ceremony_id, SIGN_IN)
    passkey = await _verify(db, settings, ceremony, credential, require_user_verification=True)
    user = await db.get(User, passkey.user_id)
    if user is None:
        raise PasskeyRefused("That passkey is not registered for this account.")
    if user.second_factor_locked_at is not None:
        raise PasskeyRefused(
            "Login to this account is locked after too many failed attempts. "
            "Reset your password by e-mail to unlock it."
        )
    challenge = await challenges.create(
        db, user, context, settings.challenge_ttl, ChallengePurpose.LOGIN, push=False
    )
    return await _approve(db, realtime, challenge)


async def _approve(
    db: AsyncSession, realtime: Publisher, challenge: LoginChallenge
) -> LoginChallenge:
    consumed = await challenges.answer_at_once(
        db, realtime, challenge.public_id, challenge.user_id, by="passkey"
    )
    if consumed is None:
        raise PasskeyRefused("This login request is no longer waiting for an answer.")
    return consumed


async def begin_without_push(
    db: AsyncSession,
    settings: Settings,
    user: User,
    context: challenges.Context,
    purpose: ChallengePurpose,
) -> LoginChallenge:
    """A challenge only a passkey can answer: the account has no phone, or no push may go."""
    return await challenges.create(db, user, context, settings.challenge_ttl, purpose, push=False)
