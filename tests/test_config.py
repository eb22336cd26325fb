"""Settings: defaults parse, bad values stop start-up naming the setting (push2fa/config.py)."""

from __future__ import annotations

import re
import stat
import typing
from dataclasses import fields
from pathlib import Path

import pytest

from push2fa.config import PROJECT_ROOT, SETTINGS, ConfigError, Settings, load_settings

SECRET = "a-secret-key-that-is-long-enough"


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """A clean environment whose instance folder is private to the test."""
    return {"PUSH2FA_INSTANCE_PATH": str(tmp_path / "instance")}


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_every_default_parses(setting):
    setting.parse(setting.default)


def test_every_setting_is_named_for_the_environment():
    names = [s.env for s in SETTINGS]

    assert len(names) == len(set(names)), "an env name is used twice"
    for name in names:
        assert re.fullmatch(r"(PUSH2FA|AUTHY)_[A-Z0-9_]+", name), name
    assert {"AUTHY_APP_NAME", "AUTHY_APP_ID", "AUTHY_PRODUCTION_API_KEY"} <= set(names)


def test_every_settings_attribute_is_read_from_the_environment():
    """A Settings attribute without an environment name would be settable by nobody; the
    reverse (a table entry without an attribute) cannot be written, the table is derived."""
    from_env = {s.attr for s in SETTINGS}

    assert {f.name for f in fields(Settings)} - from_env == {"testing"}
    assert len(SETTINGS) == len(from_env)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_every_parser_gives_its_attributes_type(setting):
    expected = typing.get_type_hints(Settings)[setting.attr]

    assert type(setting.parse(setting.default)) is expected


# The seed's Authy names, kept so that an existing .env works unchanged.
AUTHY_NAMES = {
    "authy_app_name": "AUTHY_APP_NAME",
    "authy_app_id": "AUTHY_APP_ID",
    "authy_api_key": "AUTHY_PRODUCTION_API_KEY",
}


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_every_environment_name_is_its_attributes_name(setting):
    """Catches an environment name pasted onto the wrong attribute."""
    expected = AUTHY_NAMES.get(setting.attr, f"PUSH2FA_{setting.attr.upper()}")

    assert setting.env == expected


def test_defaults_alone_give_a_working_development_setup(environ: dict[str, str]):
    settings = load_settings(environ)

    assert settings.env == "development"
    assert settings.bcrypt_rounds == 12
    assert settings.public_url == "http://localhost:5000"
    assert settings.database_url == (
        f"sqlite+aiosqlite:///{Path(environ['PUSH2FA_INSTANCE_PATH']) / 'push2fa.db'}"
    )
    assert not settings.is_https


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUSH2FA_BCRYPT_ROUNDS", "abc"),
        ("PUSH2FA_BCRYPT_ROUNDS", "3"),
        ("PUSH2FA_BCRYPT_ROUNDS", "32"),
        ("PUSH2FA_PUBLIC_URL", "ftp://x"),
        ("PUSH2FA_PUBLIC_URL", "example.com"),
        ("PUSH2FA_PUBLIC_URL", "https://example.com/?q=1"),
        ("PUSH2FA_CHALLENGE_TTL", "601"),
        ("PUSH2FA_CHALLENGE_TTL", "0"),
        ("PUSH2FA_CHALLENGE_TTL", "-5"),
        ("PUSH2FA_DATABASE_URL", "mysql://"),
        ("PUSH2FA_DATABASE_URL", "sqlite:///plain-sync-driver.db"),
        ("PUSH2FA_ENV", "staging"),
        ("PUSH2FA_LOG_LEVEL", "loud"),
        ("PUSH2FA_SMTP_PORT", "70000"),
        ("PUSH2FA_SMTP_STARTTLS", "maybe"),
        ("PUSH2FA_REDIS_URL", "http://localhost:6379"),
        ("PUSH2FA_REMEMBER_DAYS", "0"),
        ("PUSH2FA_AUTHY_TIMEOUT", "fast"),
        ("PUSH2FA_SECRET_KEY", "short"),
    ],
)
def test_invalid_value_raises_config_error_naming_the_variable(
    environ: dict[str, str], name: str, value: str
):
    environ[name] = value

    with pytest.raises(ConfigError) as raised:
        load_settings(environ)

    assert name in str(raised.value)


def test_config_error_does_not_echo_a_secret_value(environ: dict[str, str]):
    environ["PUSH2FA_SECRET_KEY"] = "tooshort"

    with pytest.raises(ConfigError) as raised:
        load_settings(environ)

    assert "tooshort" not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "value", "attr", "expected"),
    [
        ("PUSH2FA_BCRYPT_ROUNDS", " 4 ", "bcrypt_rounds", 4),
        ("PUSH2FA_CHALLENGE_TTL", "600", "challenge_ttl", 600),
        (
            "PUSH2FA_PUBLIC_URL",
            "https://push.example.org/",
            "public_url",
            "https://push.example.org",
        ),
        ("PUSH2FA_SMTP_STARTTLS", "off", "smtp_starttls", False),
        ("PUSH2FA_ENV", "Production", "env", "production"),
    ],
)
def test_valid_values_are_normalised(
    environ: dict[str, str], name: str, value: str, attr: str, expected: object
):
    environ[name] = value
    environ.setdefault("PUSH2FA_SECRET_KEY", SECRET)
    environ.setdefault("PUSH2FA_PUBLIC_URL", "https://push.example.org")

    assert getattr(load_settings(environ), attr) == expected


def test_https_public_url_makes_the_site_https(environ: dict[str, str]):
    environ["PUSH2FA_PUBLIC_URL"] = "https://push.example.org"

    assert load_settings(environ).is_https


def test_production_without_secret_key_refuses_to_start(environ: dict[str, str]):
    environ["PUSH2FA_ENV"] = "production"

    with pytest.raises(ConfigError) as raised:
        load_settings(environ)

    assert "PUSH2FA_SECRET_KEY" in str(raised.value)
    assert not (Path(environ["PUSH2FA_INSTANCE_PATH"]) / "secret_key").exists()


def test_production_with_secret_key_starts(environ: dict[str, str]):
    environ |= {"PUSH2FA_ENV": "production", "PUSH2FA_SECRET_KEY": SECRET}
    environ["PUSH2FA_PUBLIC_URL"] = "https://push.example.org"

    settings = load_settings(environ)

    assert settings.is_production
    assert settings.secret_key == SECRET


def test_development_secret_key_is_made_once_private_and_reused(environ: dict[str, str]):
    first = load_settings(environ)
    path = Path(environ["PUSH2FA_INSTANCE_PATH"]) / "secret_key"

    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 32
    assert path.read_text().strip() == first.secret_key
    second = load_settings(environ)
    assert second.secret_key == first.secret_key


def test_development_secret_key_differs_between_installations(tmp_path: Path):
    one = load_settings({"PUSH2FA_INSTANCE_PATH": str(tmp_path / "one")})
    two = load_settings({"PUSH2FA_INSTANCE_PATH": str(tmp_path / "two")})

    assert one.secret_key != two.secret_key


def test_redacted_masks_every_secret(environ: dict[str, str]):
    environ |= {
        "PUSH2FA_SECRET_KEY": SECRET,
        "AUTHY_PRODUCTION_API_KEY": "authy-api-key-value",
        "PUSH2FA_SMTP_PASSWORD": "smtp-password-value",
    }
    settings = load_settings(environ)

    redacted = settings.redacted()

    shown = repr(redacted)
    for value in (SECRET, "authy-api-key-value", "smtp-password-value"):
        assert value not in shown
    secret_attrs = {s.attr for s in SETTINGS if s.secret}
    assert {"secret_key", "authy_api_key", "smtp_password"} <= secret_attrs
    for attr in secret_attrs:
        assert redacted[attr] in {"***", ""}, attr
    assert redacted["secret_key"] == "***"
    assert redacted["public_url"] == settings.public_url


def test_unknown_override_is_refused(environ: dict[str, str]):
    with pytest.raises(ConfigError, match="no_such_setting"):
        load_settings(environ, overrides={"no_such_setting": 1})


def test_env_example_lists_every_setting():
    text = (PROJECT_ROOT / ".env.example").read_text()

    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M))
    missing = [s.env for s in SETTINGS if s.env not in listed]
    assert missing == [], f".env.example lacks {missing}"


def test_env_example_defaults_parse():
    text = (PROJECT_ROOT / ".env.example").read_text()
    by_name = {s.env: s for s in SETTINGS}

    for name, value in re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=(.*)$", text, re.M):
        assert name in by_name, f".env.example names an unknown setting {name}"
        if value.strip():
            by_name[name].parse(value.strip())


def test_readme_settings_table_lists_every_setting():
    readme = (PROJECT_ROOT / "README.md").read_text()

    rows = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`\s*\|", readme, re.M))
    missing = [s.env for s in SETTINGS if s.env not in rows]
    assert missing == [], f"the README's settings table lacks {missing}"


def test_production_refuses_an_http_public_url_naming_the_setting(environ: dict[str, str]):
    environ |= {"PUSH2FA_ENV": "production", "PUSH2FA_SECRET_KEY": SECRET}
    environ["PUSH2FA_PUBLIC_URL"] = "http://push.example.org"

    with pytest.raises(ConfigError) as raised:
        load_settings(environ)

    assert "PUSH2FA_PUBLIC_URL" in str(raised.value)
    assert "PUSH2FA_ALLOW_HTTP_PUBLIC_URL" in str(raised.value)


def test_production_runs_on_http_when_explicitly_allowed(environ: dict[str, str]):
    environ |= {"PUSH2FA_ENV": "production", "PUSH2FA_SECRET_KEY": SECRET}
    environ |= {"PUSH2FA_PUBLIC_URL": "http://10.0.0.5:5000", "PUSH2FA_ALLOW_HTTP_PUBLIC_URL": "1"}

    assert load_settings(environ).public_url == "http://10.0.0.5:5000"


def test_development_runs_on_http(environ: dict[str, str]):
    assert load_settings(environ).public_url.startswith("http://")
