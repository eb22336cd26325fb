"""Pointing push2fa at its built-in Authy emulator: the emulator's settings come from the
app's own, so both sides share the API key, app name and id, and the callback URL.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from push2fa.config import Settings, derive_secret
from push2fa.pushservice import create_emulator_app
from push2fa.pushservice.settings import EmulatorSettings
from push2fa.pushservice.shared_store import store_for


def emulator_settings(settings: Settings, callback_url: str | None = None) -> EmulatorSettings:
    return EmulatorSettings(
        api_key=settings.authy_api_key,
        app_name=settings.authy_app_name,
        app_id=settings.authy_app_id,
        callback_url=callback_url or settings.webhook_url,
        callback_method=cast(Literal["POST", "GET"], settings.emulator_callback_method),
        control_api_requires_key=settings.is_production,
        callback_timeout=settings.authy_timeout,
        secret_key=derive_secret(settings.secret_key, "emulator-cookies", 48),
    )


def in_process_emulator(settings: Settings) -> Any:
    """The emulator's ASGI app, mounted by the server under /_emulator; its state in
    Redis when PUSH2FA_EMULATOR_STORE_URL says so (kept across restarts)."""
    emulated = emulator_settings(settings)
    return create_emulator_app(emulated, store_for(settings.emulator_store_url, emulated.app_id))
