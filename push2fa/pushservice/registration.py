"""Checking the app-based registration token (spec 3.4), as the Authy app's server would.

The app signs the token with its Authy API key and names itself in ``iss``; a token that is
expired, signed with another key, or issued for another application must not attach a
device to anybody, so every claim is checked and any failure is one rejection. Whoever
sees a QR code (a screen share, a photo) could otherwise add a hidden phone later, so a
token also lives at most ``enrolment_token_minutes`` from its ``iat`` whatever its ``exp``
says, and is single-use: the store spends its hash in the same transaction that adds the
device. The device goes to the account named inside the signed token, and only to it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from .errors import RegistrationRejected
from .settings import EmulatorSettings

TOKEN_MAX_LENGTH = 4096
CUSTOM_USER_ID_MAX_LENGTH = 255
# Clocks of the app and the push service may differ a little (separate hosts).
CLOCK_SKEW = timedelta(seconds=30)


@dataclass(frozen=True)
class Registration:
    """What a valid token allows: one device for ``custom_user_id``, until ``expires_at``."""

    custom_user_id: str
    token_hash: str
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def registration_from(token: str, settings: EmulatorSettings, now: datetime) -> Registration:
    """The registration a token allows now, or RegistrationRejected saying why not."""
    custom_user_id, claims = _checked_claims(token, settings)
    issued = datetime.fromtimestamp(claims["iat"], UTC)
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    expires = min(expires, issued + timedelta(minutes=settings.enrolment_token_minutes))
    if issued > now + CLOCK_SKEW:
        raise RegistrationRejected("the registration token is not valid yet")
    if now >= expires:
        raise RegistrationRejected("the registration token has expired")
    return Registration(custom_user_id, token_hash(token), expires)


def custom_user_id_from(token: str, settings: EmulatorSettings) -> str:
    """The ``context.custom_user_id`` of a valid registration token."""
    return _checked_claims(token, settings)[0]


def _checked_claims(token: str, settings: EmulatorSettings) -> tuple[str, dict[str, Any]]:
    if not token or len(token) > TOKEN_MAX_LENGTH:
        raise RegistrationRejected("the registration token is missing or too long")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.api_key,
            algorithms=["HS256"],
            issuer=settings.app_name,
            leeway=0,
            options={"require": ["exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise RegistrationRejected("the registration token has expired") from None
    except jwt.InvalidTokenError:
        raise RegistrationRejected("the registration token is not valid") from None
    context = claims.get("context")
    if not isinstance(context, dict):
        raise RegistrationRejected("the registration token has no context")
    if str(context.get("authy_app_id")) != settings.app_id:
        raise RegistrationRejected("the registration token is for another application")
    custom_user_id = context.get("custom_user_id")
    if isinstance(custom_user_id, bool) or not isinstance(custom_user_id, str | int):
        raise RegistrationRejected("the registration token has no custom_user_id")
    text = str(custom_user_id)
    if not text or len(text) > CUSTOM_USER_ID_MAX_LENGTH:
        raise RegistrationRejected("the registration token has no custom_user_id")
    for claim in ("iat", "exp"):
        if isinstance(claims[claim], bool) or not isinstance(claims[claim], int | float):
            raise RegistrationRejected("the registration token is not valid")
    return text, claims
