"""Who may reach a development server: only this machine.

The development configuration derives its keys from a local secret, offers the control API
(which approves logins without a phone) and trusts plain http. Served on a public address,
anyone on the network could use all of that, so start-up refuses unless every listening
address is a loopback one (or a Unix socket / inherited descriptor, which is local).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from push2fa.config import ConfigError

LOCAL_NAMES = {"localhost"}


def is_loopback_bind(bind: str) -> bool:
    """True for ``127.0.0.1:5000``, ``[::1]:5000``, ``localhost:5000``, ``unix:...``, ``fd://N``."""
    if bind.startswith(("unix:", "fd://")):
        return True
    host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    host = host.strip("[]").lower()
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name that may resolve anywhere


def check_development_binds(env: str, binds: Iterable[str]) -> None:
    """Raise ConfigError naming PUSH2FA_ENV when development would listen beyond loopback."""
    if env != "development":
        return
    public = [bind for bind in binds if not is_loopback_bind(bind)]
    if public:
        raise ConfigError(
            f"PUSH2FA_ENV: the development configuration may only listen on this machine "
            f"(127.0.0.1, ::1, localhost), not on {', '.join(public)}. Set "
            "PUSH2FA_ENV=production (with PUSH2FA_SECRET_KEY) to serve other machines, or "
            "bind to 127.0.0.1 and put a tunnel or proxy in front."
        )
