"""The application factory's own parts: the session cookie's signer."""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer
from quart import Quart

from push2fa.web.app import SignedCookieSessions


def test_the_session_signer_is_made_once_per_set_of_keys(app: Quart) -> None:
    sessions = app.session_interface
    assert isinstance(sessions, SignedCookieSessions)

    first = sessions.get_signing_serializer(app)

    assert first is not None
    assert sessions.get_signing_serializer(app) is first


def test_a_cookie_signed_with_a_retired_key_opens_nothing_once_the_key_changes(
    app: Quart,
) -> None:
    """The kept signer must follow SECRET_KEY: after a rotation a stolen cookie signed
    with the old key is refused, unless the operator lists the old key as a fallback."""
    sessions = app.session_interface
    old = sessions.get_signing_serializer(app)
    assert old is not None
    stolen = old.dumps({"push2fa_challenge": "abc"})

    app.config["SECRET_KEY"] = "a completely different key, rotated after a leak"
    rotated = sessions.get_signing_serializer(app)

    assert rotated is not None and rotated is not old
    assert not _opens(rotated, stolen)
    app.config["SECRET_KEY_FALLBACKS"] = [old.secret_keys[-1]]
    with_fallback = sessions.get_signing_serializer(app)
    assert with_fallback is not None and _opens(with_fallback, stolen)


def _opens(serializer: URLSafeTimedSerializer, cookie: str) -> bool:
    """Whether the cookie opens as the app opens one (a verified `loads`)."""
    try:
        serializer.loads(cookie)
    except BadSignature:
        return False
    return True
