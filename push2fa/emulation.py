"""Pointing push2fa at its own push service: the service's settings come from the app's,
so both sides share the API key, app name and id, the callback URL and the database.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from push2fa.config import Settings, derive_secret
from push2fa.pushservice import create_emulator_app
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
    )


def in_process_emulator(settings: Settings) -> Any:
    """The push service's ASGI app, mounted by the server under /_emulator; its data in
    the app's own database (migrated before serving)."""
    return create_emulator_app(emulator_settings(settings))
