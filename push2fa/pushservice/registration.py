"""Checking the app-based registration token (spec 3.4), as the Authy app's server would.

The app signs the token with its Authy API key and names itself in ``iss``; a token that is
expired, signed with another key, or issued for another application must not attach a
device to anybody, so every claim is checked and any failure is one rejection.
"""

from __future__ import annotations

from typing import Any

import jwt

from .errors import RegistrationRejected
from .settings import EmulatorSettings

TOKEN_MAX_LENGTH = 4096
CUSTOM_USER_ID_MAX_LENGTH = 255


def custom_user_id_from(token: str, settings: EmulatorSettings) -> str:
    """The ``context.custom_user_id`` of a valid registration token."""
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
    return text
