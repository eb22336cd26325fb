"""Every setting in one place: its environment name, default, parser and meaning.

Each setting is declared once, as an attribute of `Settings`; the `SETTINGS` table derived
from those declarations is the single source for start-up validation, `.env.example` and the
README's settings table (a test keeps the three in step). An invalid value stops start-up
with a `ConfigError` that names the setting, so a typo never becomes a silent default.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_CHALLENGE_TTL = 600  # NIST SP 800-63B: an out-of-band challenge lives at most 10 minutes

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting has a value push2fa cannot run with; the message names the setting."""


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _float_range(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _http_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or fragment")
    return value


def _database_url(raw: str) -> str:
    value = raw.strip()
    if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    return value


def _redis_url(raw: str) -> str:
    value = raw.strip()
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value


def _text(raw: str) -> str:
    return raw.strip()


def _vapid_subject(raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("mailto:", "https://")) or len(value) < 10 or " " in value:
        raise ValueError("must be a mailto: address or an https:// URL")
    return value


def _secret(raw: str) -> str:
    value = raw.strip()
    if value and len(value) < 16:
        raise ValueError("must be at least 16 characters")
    return value


@dataclass(frozen=True)
class Setting:
    """One configurable value: where it comes from and what it means."""

    env: str
    default: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False
    attr: str = ""  # the Settings attribute that declares it, filled in below


_SETTING = "push2fa.setting"  # the key of a Setting in its dataclass field's metadata


def from_env(
    env: str, default: str, parse: Callable[[str], T], help: str, *, secret: bool = False
) -> T:
    """Declare a Settings attribute read from the environment variable `env`.

    The returned dataclass field carries the declaration, so each setting is written once.
    It is typed as the parser's result: mypy then refuses an attribute whose annotation
    differs from what its parser returns."""
    return cast(T, field(metadata={_SETTING: Setting(env, default, parse, help, secret)}))


@dataclass(frozen=True)
class Settings:
    """The validated settings of one running app, each declared once with its environment
    name, default, parser and meaning; `testing` alone is set only by tests' overrides."""

    env: str = from_env(
        "PUSH2FA_ENV",
        "development",
        _choice("development", "production"),
        "`production` refuses to start without a secret key and tightens defaults.",
    )
    secret_key: str = from_env(
        "PUSH2FA_SECRET_KEY",
        "",
        _secret,
        "Signs sessions, login cookies and tokens. Development generates one once in "
        "`instance/secret_key`; production requires it.",
        secret=True,
    )
    instance_path: str = from_env(
        "PUSH2FA_INSTANCE_PATH",
        str(PROJECT_ROOT / "instance"),
        _text,
        "Folder for the SQLite database, the development secret key and the mail outbox.",
    )
    database_url: str = from_env(
        "PUSH2FA_DATABASE_URL",
        "",
        _database_url,
        "SQLAlchemy URL; default `sqlite+aiosqlite:///<instance>/push2fa.db`. "
        "Use `postgresql+asyncpg://user@host/db` to scale out.",
    )
    public_url: str = from_env(
        "PUSH2FA_PUBLIC_URL",
        "http://localhost:5000",
        _http_url,
        "The URL users and Authy reach the site at. The webhook signature is checked "
        "against it, and cookies are `Secure` when it is https. A host name, not an IP "
        "address: WebAuthn (the Approver, passkeys) refuses IP addresses.",
    )
    allow_http_public_url: bool = from_env(
        "PUSH2FA_ALLOW_HTTP_PUBLIC_URL",
        "0",
        _parse_bool,
        "Set to 1 to let `PUSH2FA_ENV=production` run on an `http://` public URL (cookies "
        "and the webhook then travel in clear text). Off: production requires https.",
    )
    trusted_proxies: int = from_env(
        "PUSH2FA_TRUSTED_PROXIES",
        "0",
        _int_range(0, 10),
        "How many reverse proxies in front of the app set X-Forwarded-* headers (0 = trust none).",
    )
    bcrypt_rounds: int = from_env(
        "PUSH2FA_BCRYPT_ROUNDS", "12", _int_range(4, 16), "bcrypt cost factor for password hashes."
    )
    log_level: str = from_env(
        "PUSH2FA_LOG_LEVEL", "INFO", _choice("debug", "info", "warning", "error"), "Log level."
    )
    push_service: str = from_env(
        "PUSH2FA_PUSH_SERVICE",
        "",
        _choice("", "emulator", "authy"),
        "`authy` or `emulator`. Default: `authy` when AUTHY_PRODUCTION_API_KEY is set, "
        "otherwise the built-in emulator.",
    )
    authy_api_url: str = from_env(
        "PUSH2FA_AUTHY_API_URL",
        "https://api.authy.com",
        _http_url,
        "Base URL of the real Authy API.",
    )
    emulator_url: str = from_env(
        "PUSH2FA_EMULATOR_URL",
        "",
        _text,
        "Base URL of an emulator running as its own process "
        "(e.g. `http://127.0.0.1:5001/_emulator`). Empty: mount it in-process.",
    )
    emulator_callback_method: str = from_env(
        "PUSH2FA_EMULATOR_CALLBACK_METHOD",
        "POST",
        _choice("post", "get"),
        "How the emulator sends callbacks: POST (JSON) or GET.",
    )
    authy_timeout: float = from_env(
        "PUSH2FA_AUTHY_TIMEOUT",
        "10",
        _float_range(0.1, 60),
        "Seconds before a request to the push service is abandoned.",
    )
    authy_app_name: str = from_env(
        "AUTHY_APP_NAME",
        "push2fa",
        _text,
        "Authy application name, exactly as in the Twilio console (JWT `iss`).",
    )
    authy_app_id: str = from_env(
        "AUTHY_APP_ID",
        "",
        _text,
        "Authy application id from the console settings. The emulator derives one when empty.",
    )
    authy_api_key: str = from_env(
        "AUTHY_PRODUCTION_API_KEY",
        "",
        _text,
        "Authy production API key. Empty: the emulator derives a key from the secret key.",
        secret=True,
    )
    challenge_ttl: int = from_env(
        "PUSH2FA_CHALLENGE_TTL",
        "120",
        _int_range(30, MAX_CHALLENGE_TTL),
        "Seconds a login push stays valid (at most 600).",
    )
    status_poll_delay: float = from_env(
        "PUSH2FA_STATUS_POLL_DELAY",
        "3",
        _float_range(0.2, 60),
        "Seconds without a callback before the server asks the push service for the "
        "status (the safety net; the webhook stays the fast path).",
    )
    status_poll_limit: int = from_env(
        "PUSH2FA_STATUS_POLL_LIMIT",
        "3",
        _int_range(0, 3),
        "Safety-net polls per push at most, at 1×, 5× and 20× the poll delay (+3 s, +15 s, "
        "+60 s by default); 0 turns the poll off. None while callbacks are arriving.",
    )
    status_polls_per_second: float = from_env(
        "PUSH2FA_STATUS_POLLS_PER_SECOND",
        "5",
        _float_range(0.1, 100),
        "Safety-net polls one worker sends the push service per second at most, however "
        "many pushes are waiting (vendor APIs rate-limit).",
    )
    number_matching: str = from_env(
        "PUSH2FA_NUMBER_MATCHING",
        "always",
        _choice("always", "risky", "off"),
        "Number matching against push fatigue: `always`, `risky` (new browser or after a "
        "denial) or `off`. The real Authy app cannot take input: there the code is shown in "
        "the push for the user to compare.",
    )
    push_budget: int = from_env(
        "PUSH2FA_PUSH_BUDGET",
        "5",
        _int_range(1, 50),
        "Pushes allowed per account since its last successful login. When they are spent no "
        "push is sent, whatever the time, until the user logs in with a recovery or app code "
        "or confirms by an e-mail link.",
    )
    push_budget_window: int = from_env(
        "PUSH2FA_PUSH_BUDGET_WINDOW",
        "900",
        _int_range(60, 86400),
        "How long after a denied push a login counts as risky for number matching, in "
        "seconds (the push budget itself does not refill with time).",
    )
    max_failed_attempts: int = from_env(
        "PUSH2FA_MAX_FAILED_ATTEMPTS",
        "100",
        _int_range(3, 100),
        "Consecutive second-factor failures (denied push, wrong number or code; never a wrong "
        "password) that stop pushes and app codes until a recovery-code login or a password "
        "reset (NIST: at most 100).",
    )
    report_block_minutes: int = from_env(
        "PUSH2FA_REPORT_BLOCK_MINUTES",
        "30",
        _int_range(1, 1440),
        "After “this wasn't me”, how long no push is sent to the account.",
    )
    trusted_browser_days: int = from_env(
        "PUSH2FA_TRUSTED_BROWSER_DAYS",
        "30",
        _int_range(1, 90),
        "How long “don't ask again on this browser” lasts.",
    )
    rate_limits: bool = from_env(
        "PUSH2FA_RATE_LIMITS",
        "1",
        _parse_bool,
        "Per-IP and per-account request limits (Redis-backed when PUSH2FA_REDIS_URL is set).",
    )
    remember_days: int = from_env(
        "PUSH2FA_REMEMBER_DAYS",
        "30",
        _int_range(1, 365),
        "How long “remember me” keeps a browser logged in.",
    )
    session_idle_minutes: int = from_env(
        "PUSH2FA_SESSION_IDLE_MINUTES",
        "30",
        _int_range(1, 1440),
        "A login without “remember me” ends after this many minutes without a request.",
    )
    session_max_hours: int = from_env(
        "PUSH2FA_SESSION_MAX_HOURS",
        "12",
        _int_range(1, 168),
        "A login without “remember me” ends this many hours after it began, active or not.",
    )
    mail_per_address_per_hour: int = from_env(
        "PUSH2FA_MAIL_PER_ADDRESS_PER_HOUR",
        "5",
        _int_range(1, 100),
        "Most mails (password reset, registration notice, alerts) sent to one address in an "
        "hour; beyond it they are dropped and logged, so nobody can use the site to flood "
        "an inbox.",
    )
    audit_retention_days: int = from_env(
        "PUSH2FA_AUDIT_RETENTION_DAYS",
        "365",
        _int_range(1, 3650),
        "Days the security history (audit log) is kept; older events are deleted by the "
        "background worker.",
    )
    smtp_host: str = from_env(
        "PUSH2FA_SMTP_HOST",
        "",
        _text,
        "SMTP server for outgoing mail. Empty: mail goes to the log and `instance/outbox/`.",
    )
    smtp_port: int = from_env("PUSH2FA_SMTP_PORT", "587", _int_range(1, 65535), "SMTP port.")
    smtp_username: str = from_env("PUSH2FA_SMTP_USERNAME", "", _text, "SMTP user name.")
    smtp_password: str = from_env("PUSH2FA_SMTP_PASSWORD", "", _text, "SMTP password.", secret=True)
    smtp_starttls: bool = from_env(
        "PUSH2FA_SMTP_STARTTLS", "1", _parse_bool, "Upgrade the SMTP connection with STARTTLS."
    )
    mail_from: str = from_env(
        "PUSH2FA_MAIL_FROM",
        "push2fa <no-reply@localhost>",
        _text,
        "Sender address of outgoing mail.",
    )
    redis_url: str = from_env(
        "PUSH2FA_REDIS_URL",
        "",
        _redis_url,
        "Redis for Socket.IO fan-out across workers. Empty: one process, in memory.",
    )
    sticky_sessions: bool = from_env(
        "PUSH2FA_STICKY_SESSIONS",
        "0",
        _parse_bool,
        "Set to 1 when the load balancer pins each client to one worker: the browser may then "
        "fall back to HTTP long-polling. Otherwise sockets are WebSocket-only, which needs no "
        "pinning across workers.",
    )
    enrolment_token_minutes: int = from_env(
        "PUSH2FA_ENROLMENT_TOKEN_MINUTES",
        "5",
        _int_range(1, 60),
        "Minutes a phone enrolment code (QR) stays valid at the built-in push service. Each "
        "code enrols one phone only.",
    )
    approver_email_code_minutes: int = from_env(
        "PUSH2FA_APPROVER_EMAIL_CODE_MINUTES",
        "10",
        _int_range(1, 60),
        "Minutes a code e-mailed by the Approver stays valid. It lets a user an app created "
        "with the Authy API's `users/new` prove that e-mail and add a phone; each code adds "
        "one phone.",
    )
    approver_email_code_tries: int = from_env(
        "PUSH2FA_APPROVER_EMAIL_CODE_TRIES",
        "5",
        _int_range(1, 10),
        "Tries an Approver e-mail code allows; after that many wrong ones it is burnt and "
        "a new code must be asked for.",
    )
    vapid_private_key: str = from_env(
        "PUSH2FA_VAPID_PRIVATE_KEY",
        "",
        _text,
        "The Approver's Web Push (VAPID) private key, raw base64url or DER base64 "
        "(`vapid --gen`). Development makes one once in `instance/vapid_private_key.pem`; "
        "production requires it.",
        secret=True,
    )
    vapid_subject: str = from_env(
        "PUSH2FA_VAPID_SUBJECT",
        "mailto:admin@localhost",
        _vapid_subject,
        "Contact the browsers' push services see in each Approver push: a real `mailto:` or "
        "`https:` in production (Apple refuses localhost and .local).",
    )
    webauthn_rp_id: str = from_env(
        "PUSH2FA_WEBAUTHN_RP_ID",
        "",
        _text,
        "Relying party id of passkeys and security keys (a domain, never an IP); "
        "empty = the public URL's host, or `localhost` when that is an IP address.",
    )
    webauthn_origins: str = from_env(
        "PUSH2FA_WEBAUTHN_ORIGINS",
        "",
        _text,
        "Comma-separated origins allowed to use passkeys (an allow-list; the Host header "
        "is never trusted); empty = the public URL's origin, or `http://localhost:PORT`.",
    )
    passkey_attestation: str = from_env(
        "PUSH2FA_PASSKEY_ATTESTATION",
        "none",
        _choice("none", "direct"),
        "Attestation asked of new passkeys: `none` (privacy-friendly) or `direct`.",
    )
    passkeys_allow_synced: bool = from_env(
        "PUSH2FA_PASSKEYS_ALLOW_SYNCED",
        "1",
        _parse_bool,
        "Accept synced passkeys (backup eligible, e.g. iCloud Keychain or Google Password "
        "Manager); 0 = device-bound passkeys and security keys only.",
    )
    ngrok: bool = from_env(
        "PUSH2FA_NGROK",
        "0",
        _parse_bool,
        "Open an ngrok tunnel at start and use it as the public URL (extra `ngrok`).",
    )
    testing: bool = False

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def uses_emulator(self) -> bool:
        return self.push_service == "emulator"

    @property
    def socket_transports(self) -> tuple[str, ...]:
        """Engine.IO transports the server accepts and the browser is told to use.

        Long-polling is a series of HTTP requests that must all reach the worker holding
        the session, so it is only offered when the load balancer pins clients."""
        return ("websocket", "polling") if self.sticky_sessions else ("websocket",)

    @property
    def emulator_in_process(self) -> bool:
        return self.uses_emulator and not self.emulator_url

    @property
    def push_api_url(self) -> str:
        """Base URL the Authy client talks to, real or emulated."""
        if not self.uses_emulator:
            return self.authy_api_url
        return self.emulator_url or f"{self.public_url}/_emulator"

    @property
    def webhook_url(self) -> str:
        """The public callback URL: what Authy calls and what its signature covers."""
        return f"{self.public_url}/webhooks/authy"

    @property
    def public_origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with every secret masked, safe to log."""
        secret_attrs = {s.attr for s in SETTINGS if s.secret}
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = "***" if f.name in secret_attrs and value else value
        return out


SETTINGS: tuple[Setting, ...] = tuple(
    replace(f.metadata[_SETTING], attr=f.name) for f in fields(Settings) if _SETTING in f.metadata
)
"""Every environment setting in declaration order: the table that start-up validation,
`.env.example` and the README's settings table are made from."""


def derive_secret(secret_key: str, purpose: str, length: int = 32) -> str:
    digest = hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()
    return digest[:length]


def _development_secret(instance: Path) -> str:
    """One secret per installation, created once so that every worker shares it."""
    path = instance / "secret_key"
    instance.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Read, parse and validate every setting; raise ConfigError naming the bad one."""
    env = dict(os.environ if environ is None else environ)
    overrides = dict(overrides or {})
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if setting.attr in overrides:
            values[setting.attr] = overrides.pop(setting.attr)
            continue
        raw = env.get(setting.env, setting.default)
        try:
            values[setting.attr] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.env}: {exc} (got {_shown(setting, raw)})") from None
    values["testing"] = bool(overrides.pop("testing", False))
    if overrides:
        raise ConfigError(f"unknown settings: {', '.join(sorted(overrides))}")

    instance = Path(values["instance_path"])
    if not values["database_url"]:
        values["database_url"] = f"sqlite+aiosqlite:///{instance / 'push2fa.db'}"
    if not values["secret_key"]:
        if values["env"] == "production":
            raise ConfigError(
                "PUSH2FA_SECRET_KEY: required when PUSH2FA_ENV=production "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        values["secret_key"] = _development_secret(instance)
    if (
        values["env"] == "production"
        and not values["public_url"].startswith("https://")
        and not values["allow_http_public_url"]
        and not values["ngrok"]  # the tunnel's https URL replaces it at start
    ):
        raise ConfigError(
            "PUSH2FA_PUBLIC_URL: production needs an https:// URL (got "
            f"{values['public_url']!r}); set PUSH2FA_ALLOW_HTTP_PUBLIC_URL=1 to run on http "
            "anyway, e.g. behind a proxy that terminates TLS on this host"
        )
    if not values["push_service"]:
        values["push_service"] = "authy" if values["authy_api_key"] else "emulator"
    if values["push_service"] == "authy" and not values["authy_api_key"]:
        raise ConfigError("AUTHY_PRODUCTION_API_KEY: required when PUSH2FA_PUSH_SERVICE=authy")
    if values["push_service"] == "emulator":
        if not values["authy_api_key"]:
            values["authy_api_key"] = derive_secret(values["secret_key"], "emulator-api-key")
        if not values["authy_app_id"]:
            values["authy_app_id"] = derive_secret(values["secret_key"], "emulator-app-id", 24)
        if values["emulator_url"]:
            try:
                values["emulator_url"] = _http_url(values["emulator_url"])
            except ValueError as exc:
                raise ConfigError(f"PUSH2FA_EMULATOR_URL: {exc}") from None
    _check_relying_party(values)
    values["emulator_callback_method"] = values["emulator_callback_method"].upper()
    values["log_level"] = values["log_level"].upper()
    return Settings(**values)


def _check_relying_party(values: dict[str, Any]) -> None:
    """Passkeys need a domain rpId and origins within it: refuse to start otherwise."""
    from push2fa.webauthn import RelyingParty

    try:
        RelyingParty.from_settings(
            values["public_url"],
            "push2fa",
            rp_id=values["webauthn_rp_id"],
            origins=values["webauthn_origins"],
        )
    except ValueError as exc:
        raise ConfigError(f"PUSH2FA_WEBAUTHN_RP_ID / PUSH2FA_WEBAUTHN_ORIGINS: {exc}") from None


def _shown(setting: Setting, raw: str) -> str:
    return "a hidden value" if setting.secret else repr(raw)


def _documented_default(setting: Setting) -> str:
    """The default as documented: the instance folder relative to the checkout."""
    return "instance" if setting.env == "PUSH2FA_INSTANCE_PATH" else setting.default


def env_example() -> str:
    """The text of `.env.example`: every setting, commented, with its default."""
    lines = [
        "# push2fa settings. Copy to .env and uncomment what you change.",
        "# Every setting is optional in development; see README.md for the table.",
        "",
    ]
    for setting in SETTINGS:
        lines.append(f"# {setting.help}")
        lines.append(f"# {setting.env}={_documented_default(setting)}")
        lines.append("")
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's settings table."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for setting in SETTINGS:
        default = _documented_default(setting)
        shown = f"`{default}`" if default else "(empty)"
        rows.append(f"| `{setting.env}` | {shown} | {setting.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    import sys

    print(markdown_table() if "--markdown" in sys.argv else env_example())
