"""Settings of the Authy emulator.

They mirror what an Authy application is configured with in the Twilio console (API key,
name, id, OneTouch callback URL and method), so the app can be pointed at the emulator
with the very same values it would use for real Authy.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit


@dataclass(frozen=True)
class EmulatorSettings:
    api_key: str = field(repr=False)
    app_name: str
    app_id: str
    callback_url: str
    callback_method: Literal["POST", "GET"] = "POST"
    control_api_requires_key: bool = False
    callback_timeout: float = 5.0
    # Signs the phone page's cookies and CSRF tokens. The store is in memory, so a random
    # per-process key loses nothing on restart; pass a fixed one when workers share state.
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("EmulatorSettings.api_key must not be empty")
        if not self.app_name:
            raise ValueError("EmulatorSettings.app_name must not be empty")
        if not self.app_id:
            raise ValueError("EmulatorSettings.app_id must not be empty")
        if self.callback_method not in ("POST", "GET"):
            raise ValueError("EmulatorSettings.callback_method must be 'POST' or 'GET'")
        parts = urlsplit(self.callback_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("EmulatorSettings.callback_url must be an absolute http(s) URL")
        if not self.callback_timeout > 0:
            raise ValueError("EmulatorSettings.callback_timeout must be positive")
        if len(self.secret_key) < 16:
            raise ValueError("EmulatorSettings.secret_key must be at least 16 characters")
