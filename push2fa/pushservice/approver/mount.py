"""Adding the Approver to a push service app: its pages and API, its lifetime."""

from __future__ import annotations

from quart import Quart
from quart_rate_limiter import RateLimiter

from push2fa.pushservice.service import Emulator

from .service import EXTENSION_KEY, Approver, ApproverSettings, client_key, limit_store
from .views import approver as blueprint


def init_approver(app: Quart, emulator: Emulator, settings: ApproverSettings) -> Approver:
    """Add the Approver to a push service app (pages, API, Web Push, its lifetime)."""
    approver = Approver(settings, emulator)
    app.extensions[EXTENSION_KEY] = approver
    app.register_blueprint(blueprint)
    RateLimiter(app, key_function=client_key, store=limit_store(settings))
    app.config["QUART_RATE_LIMITER_ENABLED"] = settings.rate_limits
    app.before_serving(approver.start)
    app.after_serving(approver.stop)
    return approver
