"""The application factory: settings, extensions, blueprints, errors, security headers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from itsdangerous import URLSafeTimedSerializer
from quart import Quart, Response, abort, current_app, g, render_template, request, session
from quart.sessions import SecureCookieSessionInterface
from quart_auth import QuartAuth
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, Map

from push2fa import services
from push2fa.assets import content_security_policy, init_assets
from push2fa.config import Settings, load_settings
from push2fa.domain import withdrawal
from push2fa.domain.inputs import MAX_ROW_ID
from push2fa.domain.login_flow import SESSION_KEY
from push2fa.domain.periodic import run_forever
from push2fa.logs import configure_logging
from push2fa.realtime.access import make_authorizer
from push2fa.realtime.hub import Realtime
from push2fa.web import csrf, request_user
from push2fa.web.forms import csrf_token
from push2fa.web.limits import init_limits

log = logging.getLogger("push2fa.request")

MAX_BODY_BYTES = 256 * 1024


def create_app(overrides: Mapping[str, Any] | None = None) -> Quart:
    """Build a push2fa app. `overrides` replaces settings by attribute name (tests)."""
    settings = load_settings(overrides=overrides)
    configure_logging(settings.log_level)
    # Rooted at the package: the pages' templates are web's own, the static files are
    # shared with the push service's pages (push2fa/static, see push2fa.assets).
    app = Quart(
        "push2fa",
        template_folder="web/templates",
        static_folder="static",
    )
    _configure(app, settings)
    app.session_interface = SignedCookieSessions()
    app.asgi_app = HostGuard(app.asgi_app)  # type: ignore[method-assign]
    app.url_map.converters["int"] = RowIdConverter
    _guard_static_files(app)
    app.before_request(_drop_malformed_session)
    QuartAuth(app)
    init_assets(app)
    app.add_template_global(csrf_token, "csrf_token")

    @app.context_processor
    async def _settings_in_templates() -> dict[str, object]:
        return {"settings": settings, "transports": ",".join(settings.socket_transports)}

    hub = Realtime(settings)
    hub.set_authorizer(make_authorizer(app))
    svc = services.init_app(app, settings, hub)
    svc.on_start.append(withdrawal.install)
    svc.background.append(run_forever)
    request_user.init_app(app)
    csrf.init_app(app)
    init_limits(app, settings)
    _register_blueprints(app)
    _register_error_handlers(app)
    app.after_request(_security_headers)
    app.before_request(_start_timer)
    app.after_request(_log_request)
    return app


def _configure(app: Quart, settings: Settings) -> None:
    secure = settings.is_https
    app.config.update(
        SECRET_KEY=settings.secret_key,
        CSRF_SECRET=settings.secret_key.encode(),
        TESTING=settings.testing,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_NAME="push2fa_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=timedelta(days=settings.remember_days),
        QUART_AUTH_COOKIE_NAME="push2fa_auth",
        QUART_AUTH_COOKIE_SECURE=secure,
        QUART_AUTH_COOKIE_SAMESITE="Lax",
        QUART_AUTH_COOKIE_HTTP_ONLY=True,
        QUART_AUTH_DURATION=settings.remember_days * 24 * 3600,
        QUART_AUTH_SALT="push2fa login",
        TEMPLATES_AUTO_RELOAD=not settings.is_production,
    )


class SignedCookieSessions(SecureCookieSessionInterface):
    """Quart's signed-cookie sessions, with the signer made once per set of keys.

    Quart builds a new signer (key list, HMAC options, JSON tagger) for every request and
    every socket handshake, cookie or not: 1-2 % of the webhook's time in the profile. The
    signer holds nothing but its keys, so it is kept until SECRET_KEY or its fallbacks
    change."""

    _made: tuple[tuple[Any, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Quart) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        made = self._made
        if made is None or made[0] != keys:
            made = self._made = (keys, super().get_signing_serializer(app))
        return made[1]


def _register_blueprints(app: Quart) -> None:
    from push2fa.web.account.views import blueprint as account_bp
    from push2fa.web.auth.views import blueprint as auth_bp
    from push2fa.web.main.views import blueprint as main_bp
    from push2fa.web.ops import blueprint as ops_bp
    from push2fa.web.passkeys.views import blueprint as passkeys_bp
    from push2fa.web.twofa.views import blueprint as twofa_bp
    from push2fa.web.webhooks import blueprint as webhooks_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(twofa_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(passkeys_bp)


class HostGuard:
    """Refuse a request whose Host (or X-Forwarded-Host, once the proxy middleware has put
    it there) is no host name at all, such as ".": Quart builds its URL adapter from it
    before any error handler is in place, so werkzeug's BadHost would become a 500."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and not _is_host_name(_host_of(scope)):
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": b"Bad Request: invalid Host"})
            return
        await self.inner(scope, receive, send)


def _host_of(scope: Any) -> str:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"host":
            return bytes(value).decode("latin-1")
    return ""


def _is_host_name(host: str) -> bool:
    """What werkzeug's Map.bind accepts: a name that encodes as IDNA, with any port."""
    name = host.lower().partition(":")[0]
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True


class RowIdConverter(IntegerConverter):
    """`<int:...>` in a route: ASCII digits (`\\d` also matches "²", which int() refuses)
    and no larger than an id column holds, so an oversized id is a 404, not a database
    error."""

    regex = r"[0-9]+"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)


def _guard_static_files(app: Quart) -> None:
    """A file name the file system refuses (too long, NUL byte) is a missing file, not an
    error: wrap the static view once so every such name is a 404."""
    serve = app.send_static_file

    async def static(filename: str) -> Response:
        try:
            return await serve(filename)
        except (OSError, ValueError):
            abort(404)

    app.view_functions["static"] = static


def _is_text(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 256


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _are_flashes(value: object) -> bool:
    """A list of (category, message) pairs, as quart.flash writes it."""
    return isinstance(value, list) and all(
        isinstance(item, list | tuple) and len(item) == 2 and all(isinstance(x, str) for x in item)
        for item in value
    )


# What the app itself writes to the session, by key. The cookie is signed, but a value of
# another shape (an older release, a test's own cookie) must mean "no session", not a
# TypeError deep inside a view or a template.
SESSION_SHAPES: dict[str, Callable[[object], bool]] = {
    SESSION_KEY: _is_text,
    "fresh_2fa_at": _is_time,
    "csrf": _is_text,
    "_flashes": _are_flashes,
}


async def _drop_malformed_session() -> None:
    for key, valid in SESSION_SHAPES.items():
        if key in session and not valid(session[key]):
            log.info("session with a malformed %r dropped", key)
            session.clear()
            return


ERROR_TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    413: "Request too large",
    429: "Too many requests",
    500: "Something went wrong",
}


def _register_error_handlers(app: Quart) -> None:
    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        code = error.code or 500
        response = Response(await _error_page(code, error.description), status=code)
        for name, value in error.get_headers():
            if name.lower() != "content-type":  # keeps Retry-After, Allow, ...
                response.headers[name] = value
        return response

    @app.errorhandler(UnicodeError)
    async def undecodable(error: UnicodeError) -> tuple[str, int]:
        """Text that is not what it claims (a header, a query) is the client's error."""
        return await _error_page(400, "The request could not be decoded."), 400

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> tuple[str, int]:
        logging.getLogger("push2fa").exception("unhandled error on %s", _route_name())
        return await _error_page(500, None), 500


async def _error_page(code: int, description: str | None) -> str:
    """Render an error page that cannot itself fail (falls back to plain HTML)."""
    title = ERROR_TITLES.get(code, "Error")
    try:
        return await render_template("error.html", code=code, title=title, message=description)
    except Exception:
        return f"<!doctype html><title>{code} {title}</title><h1>{code} {title}</h1>"


async def _security_headers(response: Response) -> Response:
    settings = services.settings()
    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy",
        content_security_policy(current_app.config.get("CSP_EXTRA_SOURCES", "")),
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if settings.is_https:
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    if g.get("user") is not None or request.path.startswith("/auth"):
        headers.setdefault("Cache-Control", "no-store")
    return response


async def _start_timer() -> None:
    g.started = time.perf_counter()


def _route_name() -> str:
    """The matched route's pattern, never the concrete path: paths can carry tokens."""
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


async def _log_request(response: Response) -> Response:
    elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    user = g.get("user")
    log.info(
        "%s %s %s %.1fms user=%s ip=%s",
        request.method,
        _route_name(),
        response.status_code,
        elapsed,
        user.id if user is not None else "-",
        request.remote_addr or "-",
    )
    return response
