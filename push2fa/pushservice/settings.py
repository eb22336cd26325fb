"""Settings of push2fa's push service.

They mirror what an Authy application is configured with in the Twilio console (API key,
name, id, OneTouch callback URL and method), so the app can be pointed at its own push
service with the very same values it would use for real Authy; plus where the service
keeps its data (the app's database) and how long an enrolment token lives.
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
    # The app's database (migrated to head): users, devices and requests live there.
    database_url: str = field(repr=False)
    callback_method: Literal["POST", "GET"] = "POST"
    callback_timeout: float = 5.0
    enrolment_token_minutes: int = 5
    # Signs the phone page's cookies and CSRF tokens. Pass the same fixed key to every
    # worker and across restarts, or enrolled phones lose their cookie; a random one suits
    # a single short-lived process (tests).
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # In production only a decision signed on the phone (the Approver) approves: the
    # control API and the development phone page (a cookie approves) are not even routed.
    production: bool = False

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
        if not self.database_url:
            raise ValueError("EmulatorSettings.database_url must not be empty")
        if not 1 <= self.enrolment_token_minutes <= 60:
            raise ValueError("EmulatorSettings.enrolment_token_minutes must be 1..60")
        if not self.callback_timeout > 0:
            raise ValueError("EmulatorSettings.callback_timeout must be positive")
        if len(self.secret_key) < 16:
            raise ValueError("EmulatorSettings.secret_key must be at least 16 characters")
