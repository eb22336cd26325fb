"""The passkey pages through the test client: refusals that need no browser.

Bad input gets a clear 4xx or a flashed message and changes nothing; no route answers 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select

from push2fa.config import ConfigError, load_settings
from push2fa.domain import passkeys
from push2fa.models import LoginChallenge, Passkey, PasskeyCeremony, utcnow
from push2fa.webauthn import RelyingParty
from tests.conftest import get_csrf, login, register
from tests.web.auth.rows import user_named

PASSWORD = "correct horse battery"


async def rows(app: Quart, model: Any) -> list[Any]:
    async with app.extensions["push2fa"].db.session() as db:
        return list((await db.execute(select(model).order_by(model.id))).scalars())


async def give_passkey(app: Quart, username: str, name: str = "key") -> Passkey:
    """A stored passkey row (its key material is never used by these tests)."""
    user = await user_named(app, username)
    async with app.extensions["push2fa"].db.session() as db:
        key = Passkey(
            user_id=user.id,
            credential_id=f"cred-{username}-{name}",
            public_key=b"\x00",
            sign_count=0,
            name=name,
            device_type="single_device",
            backed_up=False,
            aaguid="",
            created_at=utcnow(),
        )
        db.add(key)
        await db.commit()
        return key


async def logged_in(client: Any, username: str = "alice") -> str:
    await register(client, username)
    response = await login(client, username)
    assert response.status_code == 302
    return await get_csrf(client, "/passkeys/")


async def test_adding_the_first_passkey_needs_the_password(app: Quart, client: Any) -> None:
    token = await logged_in(client)
    for password in ("", "wrong password"):
        response = await client.post(
            "/passkeys/register/options", form={"csrf_token": token, "password": password}
        )
        assert response.status_code == 403
        assert (await response.get_json())["error"] == "That password is not right."
    assert await rows(app, PasskeyCeremony) == []
    response = await client.post(
        "/passkeys/register/options", form={"csrf_token": token, "password": PASSWORD}
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert body["publicKey"]["rp"]["id"] == "localhost"
    assert body["publicKey"]["attestation"] == "none"
    [ceremony] = await rows(app, PasskeyCeremony)
    assert ceremony.id == body["ceremony"] and ceremony.purpose == "register"


async def test_with_a_second_factor_adding_a_passkey_needs_it_fresh_not_the_password(
    app: Quart, client: Any
) -> None:
    token = await logged_in(client)
    await give_passkey(app, "alice")
    response = await client.post(
        "/passkeys/register/options", form={"csrf_token": token, "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "second factor" in (await response.get_json())["error"]
    assert await rows(app, PasskeyCeremony) == []


async def test_options_without_the_csrf_token_are_refused(app: Quart, client: Any) -> None:
    await logged_in(client)
    for path in ("/passkeys/register/options", "/passkeys/sign-in/options"):
        response = await client.post(path, form={"password": PASSWORD})
        assert response.status_code == 400, path
    assert await rows(app, PasskeyCeremony) == []


@pytest.mark.parametrize(
    "credential",
    ["not json", "[]", '{"id": 5}', '{"rawId": "!!!"}', "{" * 5000, '{"rawId": "AAAA"}'],
)
async def test_a_malformed_sign_in_answer_is_refused_without_an_error(
    app: Quart, client: Any, credential: str
) -> None:
    await register(client)
    await give_passkey(app, "alice")
    token = await get_csrf(client, "/auth/login")
    options = await client.post("/passkeys/sign-in/options", form={"csrf_token": token})
    ceremony = (await options.get_json())["ceremony"]
    response = await client.post(
        "/passkeys/sign-in",
        form={"csrf_token": token, "ceremony": ceremony, "credential": credential},
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/auth/login")
    assert await rows(app, LoginChallenge) == []
    [key] = await rows(app, Passkey)
    assert key.last_used_at is None


async def test_an_unknown_ceremony_is_refused(app: Quart, client: Any) -> None:
    await register(client)
    token = await get_csrf(client, "/auth/login")
    response = await client.post(
        "/passkeys/sign-in",
        form={"csrf_token": token, "ceremony": "made-up", "credential": '{"rawId": "AAAA"}'},
        follow_redirects=True,
    )
    assert "expired or was already used" in await response.get_data(as_text=True)


async def test_nobody_renames_another_accounts_passkey(app: Quart, client: Any) -> None:
    await register(client, "bob")
    bobs = await give_passkey(app, "bob", "bob's key")
    token = await logged_in(client, "alice")
    response = await client.post(
        f"/passkeys/{bobs.id}/rename",
        form={"csrf_token": token, "name": "mine now"},
        follow_redirects=True,
    )
    assert "No such passkey." in await response.get_data(as_text=True)
    [key] = await rows(app, Passkey)
    assert key.name == "bob's key"


async def test_removing_another_accounts_passkey_changes_nothing(app: Quart) -> None:
    client = app.test_client()
    await register(client, "bob")
    await register(client, "alice")
    bobs = await give_passkey(app, "bob")
    alice = await user_named(app, "alice")
    svc = app.extensions["push2fa"]
    async with app.test_request_context("/"), svc.db.session() as db:
        assert await passkeys.remove(db, svc.settings, alice, bobs.id) is False
    assert [k.id for k in await rows(app, Passkey)] == [bobs.id]


async def test_removing_a_passkey_needs_a_fresh_second_factor(app: Quart, client: Any) -> None:
    token = await logged_in(client)
    key = await give_passkey(app, "alice")
    response = await client.post(
        f"/passkeys/{key.id}/remove", form={"csrf_token": token}, follow_redirects=True
    )
    assert "Confirm it is you with your second factor first." in await response.get_data(
        as_text=True
    )
    assert len(await rows(app, Passkey)) == 1


async def test_an_account_with_a_passkey_and_no_phone_is_asked_for_the_passkey(
    app: Quart, client: Any
) -> None:
    await register(client)
    await give_passkey(app, "alice")
    response = await login(client)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/auth/2fa/wait")
    [challenge] = await rows(app, LoginChallenge)
    assert challenge.status == "pending" and challenge.authy_id is None
    page = await (await client.get("/auth/2fa/wait")).get_data(as_text=True)
    assert "Use a passkey or security key" in page and 'id="passkey-first"' in page
    home = await (await client.get("/")).get_data(as_text=True)
    assert "Log out" not in home  # the password alone did not log in


async def test_second_factor_options_need_a_login_in_progress(app: Quart, client: Any) -> None:
    token = await get_csrf(client, "/auth/login")
    response = await client.post("/passkeys/second-factor/options", form={"csrf_token": token})
    assert response.status_code == 403
    assert await rows(app, PasskeyCeremony) == []


def test_the_relying_party_follows_the_public_url_and_never_an_ip() -> None:
    site = RelyingParty.from_settings("https://push2fa.example.org", "push2fa")
    assert site.rp_id == "push2fa.example.org"
    assert site.origins == ("https://push2fa.example.org",)
    local = RelyingParty.from_settings("http://127.0.0.1:5000", "push2fa")
    assert (local.rp_id, local.origins) == ("localhost", ("http://localhost:5000",))
    listed = RelyingParty.from_settings(
        "https://a.example.org",
        "push2fa",
        rp_id="example.org",
        origins="https://a.example.org, https://b.example.org/",
    )
    assert listed.origins == ("https://a.example.org", "https://b.example.org")


@pytest.mark.parametrize(
    "env",
    [
        {"PUSH2FA_WEBAUTHN_RP_ID": "10.0.0.1"},
        {"PUSH2FA_WEBAUTHN_ORIGINS": "https://evil.example.net"},
        {"PUSH2FA_WEBAUTHN_ORIGINS": "http://push2fa.example.org"},
        {"PUSH2FA_PASSKEY_ATTESTATION": "enterprise"},
    ],
)
def test_bad_passkey_settings_stop_start_up(env: dict[str, str], tmp_path: Any) -> None:
    environ = {
        "PUSH2FA_INSTANCE_PATH": str(tmp_path),
        "PUSH2FA_PUBLIC_URL": "https://push2fa.example.org",
        **env,
    }
    with pytest.raises(ConfigError, match="PUSH2FA_(WEBAUTHN|PASSKEY)"):
        load_settings(environ)


async def test_confirming_with_a_passkey_only_account_waits_for_the_passkey(
    app: Quart, client: Any
) -> None:
    token = await logged_in(client)
    await give_passkey(app, "alice")
    response = await client.post("/passkeys/confirm", form={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/auth/2fa/wait")
    [challenge] = await rows(app, LoginChallenge)
    assert (challenge.purpose, challenge.status, challenge.authy_id) == ("reauth", "pending", None)
    assert challenge.next_path == "/passkeys/"


async def test_a_ceremony_started_by_another_account_cannot_add_a_passkey(app: Quart) -> None:
    bob, alice = app.test_client(), app.test_client()
    bob_token = await logged_in(bob, "bob")
    started = await bob.post(
        "/passkeys/register/options", form={"csrf_token": bob_token, "password": PASSWORD}
    )
    ceremony = (await started.get_json())["ceremony"]
    alice_token = await logged_in(alice, "alice")
    response = await alice.post(
        "/passkeys/register",
        form={
            "csrf_token": alice_token,
            "ceremony": ceremony,
            "credential": '{"rawId": "AAAA"}',
            "name": "stolen",
        },
        follow_redirects=True,
    )
    assert "This passkey request is not valid." in await response.get_data(as_text=True)
    assert await rows(app, Passkey) == []


async def test_when_no_push_may_be_sent_the_passkey_is_asked_for_instead(
    app: Quart, client: Any
) -> None:
    """Pushes paused after a report: the password step still reaches a second factor."""
    from datetime import timedelta

    from sqlalchemy import update

    from push2fa.models import User

    await register(client)
    await give_passkey(app, "alice")
    async with app.extensions["push2fa"].db.session() as db:
        await db.execute(
            update(User).values(authy_id=123, push_blocked_until=utcnow() + timedelta(hours=1))
        )
        await db.commit()
    response = await login(client)
    assert response.headers["Location"].endswith("/auth/2fa/wait")
    [challenge] = await rows(app, LoginChallenge)
    # No push went out; the account's phone codes answer it as well as the passkey.
    assert (challenge.status, challenge.authy_id, challenge.provider_uuid) == (
        "pending",
        123,
        None,
    )
    page = await (await client.get("/auth/2fa/wait")).get_data(as_text=True)
    assert "reported as not yours" in page and 'id="passkey-first"' in page
    assert 'id="recovery-form"' in page
