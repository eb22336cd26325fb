"""Who a rate limit counts: the client address the trusted proxies vouch for, and the
account a login names, however it is typed.

Per-account limits must hold whether the attacker types the username, the e-mail address,
or either in another case or with spaces around it: all name one account, so all share one
key, the account's id. A name that matches no account gets a keyed hash of its normalised
text, the same shape of key, so the limits behave alike and reveal nothing.
"""

from __future__ import annotations

import hashlib
import hmac

from quart import g, request

from push2fa import services
from push2fa.domain.users import find_by_login

MAX_LOGIN_LENGTH = 254


async def client_key() -> str:
    """The per-IP key: `request.remote_addr`, which TrustedProxies (urls.py) has already
    set from trusted hops only. Never the client's own X-Forwarded-For."""
    return f"ip:{request.remote_addr or '-'}"


def _typed_login(form: dict[str, str]) -> str:
    login = form.get("login") or form.get("email") or ""
    return login.strip().casefold()[:MAX_LOGIN_LENGTH] if isinstance(login, str) else ""


async def account_key() -> str:
    """The per-account key of the login or reset request being made (cached per request:
    the limiter asks more than once)."""
    cached = g.get("_account_key")
    if isinstance(cached, str):
        return cached
    form = dict((await request.form).items())
    typed = _typed_login(form)
    svc = services.current()
    key = ""
    # Only the login form takes a username or an e-mail, two names of one account. The reset
    # form takes the e-mail alone, already one key once normalised: no lookup there, so the
    # request path does the same work whether or not the address has an account.
    # Text no account name can hold (a NUL or another control character) is no name: it
    # gets the unknown-name key without a lookup (PostgreSQL refuses NUL in a query).
    if typed and "login" in form and typed.isprintable():
        async with svc.db.session() as db:
            user = await find_by_login(db, typed)
        if user is not None:
            key = f"account:{user.id}"
    if not key:
        secret = svc.settings.secret_key.encode()
        key = "account:?" + hmac.new(secret, typed.encode(), hashlib.sha256).hexdigest()[:24]
    g._account_key = key
    return key
