"""The development configuration listens on this machine only."""

from __future__ import annotations

import pytest

from push2fa.config import ConfigError
from push2fa.domain.exposure import check_development_binds, is_loopback_bind


@pytest.mark.parametrize(
    "bind",
    ["127.0.0.1:5000", "127.8.9.1:80", "[::1]:5000", "localhost:5000", "unix:/tmp/s", "fd://3"],
)
def test_loopback_binds_are_local(bind: str) -> None:
    assert is_loopback_bind(bind)
    check_development_binds("development", [bind])


@pytest.mark.parametrize(
    "bind", ["0.0.0.0:5000", "[::]:5000", "192.168.1.20:5000", "example.com:5000", "0.0.0.0"]
)
def test_development_on_a_public_address_is_refused_naming_the_setting(bind: str) -> None:
    with pytest.raises(ConfigError, match="PUSH2FA_ENV"):
        check_development_binds("development", ["127.0.0.1:5000", bind])


def test_production_may_listen_anywhere() -> None:
    check_development_binds("production", ["0.0.0.0:5000"])
