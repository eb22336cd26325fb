"""push2fa's own Authy-compatible push service, and its phone app (the Approver).

The Authy API is closed to new customers, so push2fa ships its own push service. The app
talks to it with the same HTTP client it would use for api.authy.com; the Approver (a PWA
whose every decision is a WebAuthn assertion) plays the Authy app; approvals come back to
the app as callbacks signed exactly as Authy signs them. Its data lives in the app's
database. The control API (approve without a phone, read codes, always behind the API key)
and the development phone page (a cookie approves) exist outside production only. Every
route lives under ``/_emulator`` (the historical prefix) so the same ASGI app can be
mounted inside the main app's process or served on its own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol, cast

import socketio
from quart import Quart, Response, current_app, request
from werkzeug.exceptions import HTTPException

from push2fa.assets import VENDOR_DIR, content_security_policy, init_assets

from .authy_api import authy_api, has_api_key
from .control_api import control_api
from .errors import AuthyErrorAnswer
from .phone import phone
from .phone_updates import SOCKETIO_PATH
from .service import EXTENSION_KEY, Emulator, current_emulator
from .settings import EmulatorSettings
from .store import Store

__all__ = [
    "ASGIApp",
    "Emulator",
    "EmulatorSettings",
    "Store",
    "create_emulator_app",
    "create_emulator_quart_app",
]

if TYPE_CHECKING:
    from .approver.service import ApproverSettings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Answers that a client probing for ids, keys or cookies collects (see pushservice.probing).
PROBE_FAILURES = frozenset({401, 403, 404})
HSTS = "max-age=63072000; includeSubDomains"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class ASGIApp(Protocol):
    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None: ...


def create_emulator_app(
    settings: EmulatorSettings,
    store: Store | None = None,
    approver: ApproverSettings | None = None,
) -> ASGIApp:
    """The whole push service as one ASGI app: Socket.IO at ``/_emulator/socket.io`` in
    front of the Quart app. Lifespan events reach the Quart app, which opens and closes the
    callback HTTP session, the database engine and the TOTP ticker."""
    quart_app = create_emulator_quart_app(settings, store, approver)
    emulator: Emulator = quart_app.extensions[EXTENSION_KEY]
    asgi = socketio.ASGIApp(
        emulator.realtime.sio, other_asgi_app=quart_app, socketio_path=SOCKETIO_PATH
    )
    return cast(ASGIApp, asgi)


def create_emulator_quart_app(
    settings: EmulatorSettings,
    store: Store | None = None,
    approver: ApproverSettings | None = None,
) -> Quart:
    """The HTTP part alone (Authy API, control API, phone page), e.g. for ``test_client``."""
    # Vendor assets (Bootstrap, socket.io client) are the project's; `vendor_tags` links
    # them through this app's "static" endpoint, under the /_emulator prefix.
    app = Quart(
        __name__,
        static_folder=str(VENDOR_DIR.parent),
        static_url_path="/_emulator/static",
        template_folder="templates",
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    init_assets(app)
    emulator = Emulator(settings, store)
    app.extensions[EXTENSION_KEY] = emulator
    app.register_blueprint(authy_api)
    if not settings.production:  # test and development doors; production has none
        app.register_blueprint(control_api)
        app.register_blueprint(phone)
    if approver is not None:  # the Approver PWA (its tables need the app's database)
        from .approver.mount import init_approver

        init_approver(app, emulator, approver)
    app.register_error_handler(AuthyErrorAnswer, _authy_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    app.before_request(_refuse_probers)
    app.after_request(_count_probe_failures)
    app.after_request(_security_headers)
    app.before_serving(emulator.start)
    app.after_serving(emulator.stop)
    return app


async def _authy_error(error: AuthyErrorAnswer) -> tuple[dict[str, Any], int]:
    return error.body(), error.status


async def _http_error(error: HTTPException) -> Response | tuple[dict[str, Any], int]:
    status = error.code or 500
    if request.path.startswith("/_emulator/phone"):
        return Response(error.name, status, content_type="text/plain; charset=utf-8")
    return AuthyErrorAnswer(status, "60002", error.name).body(), status


async def _unexpected_error(error: Exception) -> tuple[dict[str, Any], int]:
    log.exception("push service: unexpected error on %s %s", request.method, request.path)
    return AuthyErrorAnswer(500, "60002", "Internal error").body(), 500


def _client() -> str:
    return request.remote_addr or "-"


def _proved_key() -> bool:
    return has_api_key(request.headers.get("X-Authy-API-Key") or "")


async def _refuse_probers() -> Response | None:
    """A client that keeps failing is stopped, unless it proves the API key (the app's own
    client may share an address with strangers behind a proxy)."""
    limiter = current_emulator().probing
    client = _client()
    if limiter.blocked(client) and not _proved_key():
        retry = str(limiter.retry_after(client))
        body = AuthyErrorAnswer(429, "60003", "Too many failed requests; try again later").body()
        return Response(
            json.dumps(body), 429, content_type="application/json", headers={"Retry-After": retry}
        )
    return None


async def _count_probe_failures(response: Response) -> Response:
    if response.status_code in PROBE_FAILURES and not _proved_key():
        current_emulator().probing.record(_client())
    return response


async def _security_headers(response: Response) -> Response:
    headers = response.headers
    extra = str(current_app.config.get("CSP_EXTRA_SOURCES") or "")
    headers.setdefault("Content-Security-Policy", content_security_policy(extra))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.scheme == "https":  # as seen through trusted proxies only (see server.py)
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.endpoint is None or not request.endpoint.endswith("static"):
        headers.setdefault("Cache-Control", "no-store")
    return response
