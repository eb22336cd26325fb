"""push2fa: push-notification two-factor login, delivered to the browser the instant the
phone answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from push2fa.web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so `push2fa.config` and the CLI load without building the web stack.
    if name == "create_app":
        from push2fa.web.app import create_app

        return create_app
    raise AttributeError(name)
