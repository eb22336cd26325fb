"""Every setting in one place: its environment name, default, parser and meaning.

The table below is the single source for start-up validation, `.env.example` and the
README's settings table (a test keeps the three in step). An invalid value stops start-up
with a `ConfigError` that names the setting, so a typo never becomes a silent default.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAX_CHALLENGE_TTL = 600  # NIST SP 800-63B: an out-of-band challenge lives at most 10 minutes


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
    attr: str
    default: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "PUSH2FA_ENV",
        "env",
        "development",
        _choice("development", "production"),
        "`production` refuses to start without a secret key and tightens defaults.",
    ),
    Setting(
        "PUSH2FA_SECRET_KEY",
        "secret_key",
        "",
        _secret,
        "Signs sessions, login cookies and tokens. Development generates one once in "
        "`instance/secret_key`; production requires it.",
        secret=True,
    ),
    Setting(
        "PUSH2FA_INSTANCE_PATH",
        "instance_path",
        str(PROJECT_ROOT / "instance"),
        _text,
        "Folder for the SQLite database, the development secret key and the mail outbox.",
    ),
    Setting(
        "PUSH2FA_DATABASE_URL",
        "database_url",
        "",
        _database_url,
        "SQLAlchemy URL; default `sqlite+aiosqlite:///<instance>/push2fa.db`. "
        "Use `postgresql+asyncpg://user@host/db` to scale out.",
    ),
    Setting(
        "PUSH2FA_PUBLIC_URL",
        "public_url",
        "http://localhost:5000",
        _http_url,
        "The URL users and Authy reach the site at. The webhook signature is checked "
        "against it, and cookies are `Secure` when it is https. A host name, not an IP "
        "address: WebAuthn (the Approver, passkeys) refuses IP addresses.",
    ),
    Setting(
        "PUSH2FA_ALLOW_HTTP_PUBLIC_URL",
        "allow_http_public_url",
        "0",
        _parse_bool,
        "Set to 1 to let `PUSH2FA_ENV=production` run on an `http://` public URL (cookies "
        "and the webhook then travel in clear text). Off: production requires https.",
    ),
    Setting(
        "PUSH2FA_TRUSTED_PROXIES",
        "trusted_proxies",
        "0",
        _int_range(0, 10),
        "How many reverse proxies in front of the app set X-Forwarded-* headers (0 = trust none).",
    ),
    Setting(
        "PUSH2FA_BCRYPT_ROUNDS",
        "bcrypt_rounds",
        "12",
        _int_range(4, 16),
        "bcrypt cost factor for password hashes.",
    ),
    Setting(
        "PUSH2FA_LOG_LEVEL",
        "log_level",
        "INFO",
        _choice("debug", "info", "warning", "error"),
        "Log level.",
    ),
    Setting(
        "PUSH2FA_PUSH_SERVICE",
        "push_service",
        "",
        _choice("", "emulator", "authy"),
        "`authy` or `emulator`. Default: `authy` when AUTHY_PRODUCTION_API_KEY is set, "
        "otherwise the built-in emulator.",
    ),
    Setting(
        "PUSH2FA_AUTHY_API_URL",
        "authy_api_url",
        "https://api.authy.com",
        _http_url,
        "Base URL of the real Authy API.",
    ),
    Setting(
        "PUSH2FA_EMULATOR_URL",
        "emulator_url",
        "",
        _text,
        "Base URL of an emulator running as its own process "
        "(e.g. `http://127.0.0.1:5001/_emulator`). Empty: mount it in-process.",
    ),
    Setting(
        "PUSH2FA_EMULATOR_CALLBACK_METHOD",
        "emulator_callback_method",
        "POST",
        _choice("post", "get"),
        "How the emulator sends callbacks: POST (JSON) or GET.",
    ),
    Setting(
        "PUSH2FA_AUTHY_TIMEOUT",
        "authy_timeout",
        "10",
        _float_range(0.1, 60),
        "Seconds before a request to the push service is abandoned.",
    ),
    Setting(
        "AUTHY_APP_NAME",
        "authy_app_name",
        "push2fa",
        _text,
        "Authy application name, exactly as in the Twilio console (JWT `iss`).",
    ),
    Setting(
        "AUTHY_APP_ID",
        "authy_app_id",
        "",
        _text,
        "Authy application id from the console settings. The emulator derives one when empty.",
    ),
    Setting(
        "AUTHY_PRODUCTION_API_KEY",
        "authy_api_key",
        "",
        _text,
        "Authy production API key. Empty: the emulator derives a key from the secret key.",
        secret=True,
    ),
    Setting(
        "PUSH2FA_CHALLENGE_TTL",
        "challenge_ttl",
        "120",
        _int_range(30, MAX_CHALLENGE_TTL),
        "Seconds a login push stays valid (at most 600).",
    ),
    Setting(
        "PUSH2FA_STATUS_POLL_DELAY",
        "status_poll_delay",
        "3",
        _float_range(0.2, 60),
        "Seconds without a callback before the server asks the push service for the "
        "status (the safety net; the webhook stays the fast path).",
    ),
    Setting(
        "PUSH2FA_STATUS_POLL_LIMIT",
        "status_poll_limit",
        "3",
        _int_range(0, 3),
        "Safety-net polls per push at most, at 1×, 5× and 20× the poll delay (+3 s, +15 s, "
        "+60 s by default); 0 turns the poll off. None while callbacks are arriving.",
    ),
    Setting(
        "PUSH2FA_STATUS_POLLS_PER_SECOND",
        "status_polls_per_second",
        "5",
        _float_range(0.1, 100),
        "Safety-net polls one worker sends the push service per second at most, however "
        "many pushes are waiting (vendor APIs rate-limit).",
    ),
    Setting(
        "PUSH2FA_NUMBER_MATCHING",
        "number_matching",
        "always",
        _choice("always", "risky", "off"),
        "Number matching against push fatigue: `always`, `risky` (new browser or after a "
        "denial) or `off`. The real Authy app cannot take input: there the code is shown in "
        "the push for the user to compare.",
    ),
    Setting(
        "PUSH2FA_PUSH_BUDGET",
        "push_budget",
        "5",
        _int_range(1, 50),
        "Pushes allowed per account since its last successful login. When they are spent no "
        "push is sent, whatever the time, until the user logs in with a recovery or app code "
        "or confirms by an e-mail link.",
    ),
    Setting(
        "PUSH2FA_PUSH_BUDGET_WINDOW",
        "push_budget_window",
        "900",
        _int_range(60, 86400),
        "How long after a denied push a login counts as risky for number matching, in "
        "seconds (the push budget itself does not refill with time).",
    ),
    Setting(
        "PUSH2FA_MAX_FAILED_ATTEMPTS",
        "max_failed_attempts",
        "100",
        _int_range(3, 100),
        "Consecutive second-factor failures (denied push, wrong number or code; never a wrong "
        "password) that stop pushes and app codes until a recovery-code login or a password "
        "reset (NIST: at most 100).",
    ),
    Setting(
        "PUSH2FA_REPORT_BLOCK_MINUTES",
        "report_block_minutes",
        "30",
        _int_range(1, 1440),
        "After “this wasn't me”, how long no push is sent to the account.",
    ),
    Setting(
        "PUSH2FA_TRUSTED_BROWSER_DAYS",
        "trusted_browser_days",
        "30",
        _int_range(1, 90),
        "How long “don't ask again on this browser” lasts.",
    ),
    Setting(
        "PUSH2FA_RATE_LIMITS",
        "rate_limits",
        "1",
        _parse_bool,
        "Per-IP and per-account request limits (Redis-backed when PUSH2FA_REDIS_URL is set).",
    ),
    Setting(
        "PUSH2FA_REMEMBER_DAYS",
        "remember_days",
        "30",
        _int_range(1, 365),
        "How long “remember me” keeps a browser logged in.",
    ),
    Setting(
        "PUSH2FA_SESSION_IDLE_MINUTES",
        "session_idle_minutes",
        "30",
        _int_range(1, 1440),
        "A login without “remember me” ends after this many minutes without a request.",
    ),
    Setting(
        "PUSH2FA_SESSION_MAX_HOURS",
        "session_max_hours",
        "12",
        _int_range(1, 168),
        "A login without “remember me” ends this many hours after it began, active or not.",
    ),
    Setting(
        "PUSH2FA_MAIL_PER_ADDRESS_PER_HOUR",
        "mail_per_address_per_hour",
        "5",
        _int_range(1, 100),
        "Most mails (password reset, registration notice, alerts) sent to one address in an "
        "hour; beyond it they are dropped and logged, so nobody can use the site to flood "
        "an inbox.",
    ),
    Setting(
        "PUSH2FA_AUDIT_RETENTION_DAYS",
        "audit_retention_days",
        "365",
        _int_range(1, 3650),
        "Days the security history (audit log) is kept; older events are deleted by the "
        "background worker.",
    ),
    Setting(
        "PUSH2FA_SMTP_HOST",
        "smtp_host",
        "",
        _text,
        "SMTP server for outgoing mail. Empty: mail goes to the log and `instance/outbox/`.",
    ),
    Setting("PUSH2FA_SMTP_PORT", "smtp_port", "587", _int_range(1, 65535), "SMTP port."),
    Setting("PUSH2FA_SMTP_USERNAME", "smtp_username", "", _text, "SMTP user name."),
    Setting("PUSH2FA_SMTP_PASSWORD", "smtp_password", "", _text, "SMTP password.", secret=True),
    Setting(
        "PUSH2FA_SMTP_STARTTLS",
        "smtp_starttls",
        "1",
        _parse_bool,
        "Upgrade the SMTP connection with STARTTLS.",
    ),
    Setting(
        "PUSH2FA_MAIL_FROM",
        "mail_from",
        "push2fa <no-reply@localhost>",
        _text,
        "Sender address of outgoing mail.",
    ),
    Setting(
        "PUSH2FA_REDIS_URL",
        "redis_url",
        "",
        _redis_url,
        "Redis for Socket.IO fan-out across workers. Empty: one process, in memory.",
    ),
    Setting(
        "PUSH2FA_STICKY_SESSIONS",
        "sticky_sessions",
        "0",
        _parse_bool,
        "Set to 1 when the load balancer pins each client to one worker: the browser may then "
        "fall back to HTTP long-polling. Otherwise sockets are WebSocket-only, which needs no "
        "pinning across workers.",
    ),
    Setting(
        "PUSH2FA_ENROLMENT_TOKEN_MINUTES",
        "enrolment_token_minutes",
        "5",
        _int_range(1, 60),
        "Minutes a phone enrolment code (QR) stays valid at the built-in push service. Each "
        "code enrols one phone only.",
    ),
    Setting(
        "PUSH2FA_APPROVER_EMAIL_CODE_MINUTES",
        "approver_email_code_minutes",
        "10",
        _int_range(1, 60),
        "Minutes a code e-mailed by the Approver stays valid. It lets a user an app created "
        "with the Authy API's `users/new` prove that e-mail and add a phone; each code adds "
        "one phone.",
    ),
    Setting(
        "PUSH2FA_APPROVER_EMAIL_CODE_TRIES",
        "approver_email_code_tries",
        "5",
        _int_range(1, 10),
        "Tries an Approver e-mail code allows; after that many wrong ones it is burnt and "
        "a new code must be asked for.",
    ),
    Setting(
        "PUSH2FA_VAPID_PRIVATE_KEY",
        "vapid_private_key",
        "",
        _text,
        "The Approver's Web Push (VAPID) private key, raw base64url or DER base64 "
        "(`vapid --gen`). Development makes one once in `instance/vapid_private_key.pem`; "
        "production requires it.",
        secret=True,
    ),
    Setting(
        "PUSH2FA_VAPID_SUBJECT",
        "vapid_subject",
        "mailto:admin@localhost",
        _vapid_subject,
        "Contact the browsers' push services see in each Approver push: a real `mailto:` or "
        "`https:` in production (Apple refuses localhost and .local).",
    ),
    Setting(
        "PUSH2FA_WEBAUTHN_RP_ID",
        "webauthn_rp_id",
        "",
        _text,
        "Relying party id of passkeys and security keys (a domain, never an IP); "
        "empty = the public URL's host, or `localhost` when that is an IP address.",
    ),
    Setting(
        "PUSH2FA_WEBAUTHN_ORIGINS",
        "webauthn_origins",
        "",
        _text,
        "Comma-separated origins allowed to use passkeys (an allow-list; the Host header "
        "is never trusted); empty = the public URL's origin, or `http://localhost:PORT`.",
    ),
    Setting(
        "PUSH2FA_PASSKEY_ATTESTATION",
        "passkey_attestation",
        "none",
        _choice("none", "direct"),
        "Attestation asked of new passkeys: `none` (privacy-friendly) or `direct`.",
    ),
    Setting(
        "PUSH2FA_PASSKEYS_ALLOW_SYNCED",
        "passkeys_allow_synced",
        "1",
        _parse_bool,
        "Accept synced passkeys (backup eligible, e.g. iCloud Keychain or Google Password "
        "Manager); 0 = device-bound passkeys and security keys only.",
    ),
    Setting(
        "PUSH2FA_NGROK",
        "ngrok",
        "0",
        _parse_bool,
        "Open an ngrok tunnel at start and use it as the public URL (extra `ngrok`).",
    ),
)


@dataclass(frozen=True)
class Settings:
    """The validated settings of one running app."""

    env: str
    secret_key: str
    instance_path: str
    database_url: str
    public_url: str
    allow_http_public_url: bool
    trusted_proxies: int
    bcrypt_rounds: int
    log_level: str
    push_service: str
    authy_api_url: str
    emulator_url: str
    emulator_callback_method: str
    authy_timeout: float
    authy_app_name: str
    authy_app_id: str
    authy_api_key: str
    challenge_ttl: int
    status_poll_delay: float
    status_poll_limit: int
    status_polls_per_second: float
    number_matching: str
    push_budget: int
    push_budget_window: int
    max_failed_attempts: int
    report_block_minutes: int
    trusted_browser_days: int
    rate_limits: bool
    remember_days: int
    session_idle_minutes: int
    session_max_hours: int
    mail_per_address_per_hour: int
    audit_retention_days: int
    smtp_host: str
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    mail_from: str
    redis_url: str
    sticky_sessions: bool
    enrolment_token_minutes: int
    approver_email_code_minutes: int
    approver_email_code_tries: int
    vapid_private_key: str
    vapid_subject: str
    webauthn_rp_id: str
    webauthn_origins: str
    passkey_attestation: str
    passkeys_allow_synced: bool
    ngrok: bool
    testing: bool = field(default=False)

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
