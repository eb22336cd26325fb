"""Pointing push2fa at its own push service: the service's settings come from the app's,
so both sides share the API key, app name and id, the callback URL and the database.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Literal, cast

from push2fa.config import ConfigError, Settings, derive_secret
from push2fa.mail import send_mail
from push2fa.pushservice import create_emulator_app
from push2fa.pushservice.approver.service import ApproverSettings
from push2fa.pushservice.approver.webpush import VapidKey
from push2fa.pushservice.settings import EmulatorSettings


def emulator_settings(settings: Settings, callback_url: str | None = None) -> EmulatorSettings:
    return EmulatorSettings(
        api_key=settings.authy_api_key,
        app_name=settings.authy_app_name,
        app_id=settings.authy_app_id,
        callback_url=callback_url or settings.webhook_url,
        database_url=settings.database_url,
        callback_method=cast(Literal["POST", "GET"], settings.emulator_callback_method),
        callback_timeout=settings.authy_timeout,
        enrolment_token_minutes=settings.enrolment_token_minutes,
        secret_key=derive_secret(settings.secret_key, "emulator-cookies", 48),
        production=settings.is_production,
    )


log = logging.getLogger(__name__)


def approver_settings(settings: Settings) -> ApproverSettings | None:
    """The Approver's settings, or None (said loudly) where it cannot work: WebAuthn
    refuses an IP-address site (use http://localhost:PORT, or https with a host name)."""
    from push2fa.webauthn import RelyingParty

    try:
        rp = RelyingParty.for_public_url(settings.public_url, settings.authy_app_name)
    except ValueError as exc:
        log.warning(
            "The Approver is off: %s. Set PUSH2FA_PUBLIC_URL to http://localhost:PORT "
            "or an https:// host name.",
            exc,
        )
        return None
    try:
        vapid = VapidKey.from_settings(
            settings.vapid_private_key,
            settings.vapid_subject,
            instance_path=settings.instance_path,
            production=settings.is_production,
        )
    except ValueError as exc:
        if settings.is_production:
            log.error("The Approver is off: PUSH2FA_VAPID_*: %s", exc)
            return None
        raise ConfigError(f"PUSH2FA_VAPID_PRIVATE_KEY / PUSH2FA_VAPID_SUBJECT: {exc}") from None
    return ApproverSettings(
        database_url=settings.database_url,
        rp=rp,
        vapid=vapid,
        allow_insecure_push=not settings.is_production,
        push_timeout=settings.authy_timeout,
        send_mail=partial(send_mail, settings),
        email_code_minutes=settings.approver_email_code_minutes,
        email_code_tries=settings.approver_email_code_tries,
        redis_url=settings.redis_url,
        rate_limits=settings.rate_limits,
    )


def in_process_emulator(settings: Settings) -> Any:
    """The push service's ASGI app, mounted by the server under /_emulator; its data in
    the app's own database (migrated before serving). The Approver (at /_emulator/approver/)
    comes with it wherever WebAuthn can work."""
    return create_emulator_app(emulator_settings(settings), approver=approver_settings(settings))
