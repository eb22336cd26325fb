"""push2fa.webauthn against real answers from Chromium's virtual authenticator.

Each test runs a ceremony in a page on ``http://localhost:PORT`` with a CDP virtual
platform authenticator, then verifies (or refuses) the browser's answer in Python.
"""

# ruff: noqa: F811  (pytest fixtures are imported by name and then requested by name)
from __future__ import annotations

import hashlib
import secrets
from typing import Any

import pytest

from push2fa.webauthn import (
    CeremonyRejected,
    NewCredential,
    RelyingParty,
    authentication_options,
    registration_options,
    verify_assertion,
    verify_registration,
)
from tests.browser.conftest import chromium, open_page, page_watch  # noqa: F401  (fixtures)
from tests.pushservice.approver.conftest import (  # noqa: F401  (fixtures)
    CREATE_JS,
    GET_JS,
    VirtualAuthenticator,
    blank_origin,
)


def party(origin: str) -> RelyingParty:
    return RelyingParty(rp_id="localhost", name="push2fa test", origins=(origin,))


async def register(page: Any, rp: RelyingParty, *, uv: bool = True) -> NewCredential:
    challenge = secrets.token_bytes(32)
    options = registration_options(
        rp,
        challenge=challenge,
        user_handle=secrets.token_bytes(16),
        user_name="alice",
        require_user_verification=uv,
    )
    answer = await page.evaluate(CREATE_JS, options)
    return verify_registration(rp, answer, challenge=challenge, require_user_verification=uv)


async def sign(page: Any, rp: RelyingParty, credential: NewCredential, challenge: bytes) -> Any:
    options = authentication_options(rp, challenge=challenge, allow=[credential.credential_id])
    return await page.evaluate(GET_JS, options)


@pytest.fixture
async def phone(open_page: Any, blank_origin: str) -> tuple[Any, VirtualAuthenticator]:
    page = await open_page("phone")
    authenticator = await VirtualAuthenticator.attach(page)
    await page.goto(blank_origin)
    return page, authenticator


async def test_a_registered_passkey_signs_a_challenge_that_verifies(
    phone: tuple[Any, VirtualAuthenticator], blank_origin: str
) -> None:
    page, _ = phone
    rp = party(blank_origin)
    credential = await register(page, rp)
    assert credential.user_verified
    assert credential.device_type == "single_device"
    challenge = hashlib.sha256(b"record").digest()
    answer = await sign(page, rp, credential, challenge)
    verified = verify_assertion(
        rp,
        answer,
        challenge=challenge,
        credential_id=credential.credential_id,
        public_key=credential.public_key,
        sign_count=credential.sign_count,
    )
    assert verified.new_sign_count > credential.sign_count
    assert verified.user_verified


async def test_an_assertion_over_another_challenge_is_refused(
    phone: tuple[Any, VirtualAuthenticator], blank_origin: str
) -> None:
    page, _ = phone
    rp = party(blank_origin)
    credential = await register(page, rp)
    answer = await sign(page, rp, credential, hashlib.sha256(b"deny").digest())
    with pytest.raises(CeremonyRejected):
        verify_assertion(
            rp,
            answer,
            challenge=hashlib.sha256(b"approve").digest(),
            credential_id=credential.credential_id,
            public_key=credential.public_key,
            sign_count=credential.sign_count,
        )


async def test_a_replayed_assertion_is_refused_by_its_sign_count(
    phone: tuple[Any, VirtualAuthenticator], blank_origin: str
) -> None:
    page, _ = phone
    rp = party(blank_origin)
    credential = await register(page, rp)
    challenge = secrets.token_bytes(32)
    answer = await sign(page, rp, credential, challenge)
    kwargs: dict[str, Any] = {
        "challenge": challenge,
        "credential_id": credential.credential_id,
        "public_key": credential.public_key,
    }
    first = verify_assertion(rp, answer, sign_count=credential.sign_count, **kwargs)
    with pytest.raises(CeremonyRejected):
        verify_assertion(rp, answer, sign_count=first.new_sign_count, **kwargs)


async def test_a_bogus_signature_is_refused(
    phone: tuple[Any, VirtualAuthenticator], blank_origin: str
) -> None:
    page, authenticator = phone
    rp = party(blank_origin)
    credential = await register(page, rp)
    await authenticator.override(isBogusSignature=True)
    challenge = secrets.token_bytes(32)
    answer = await sign(page, rp, credential, challenge)
    with pytest.raises(CeremonyRejected):
        verify_assertion(
            rp,
            answer,
            challenge=challenge,
            credential_id=credential.credential_id,
            public_key=credential.public_key,
            sign_count=credential.sign_count,
        )


async def test_an_assertion_without_user_verification_is_refused_when_required(
    phone: tuple[Any, VirtualAuthenticator], blank_origin: str
) -> None:
    page, authenticator = phone
    rp = party(blank_origin)
    credential = await register(page, rp)
    await authenticator.override(isBadUV=True)
    challenge = secrets.token_bytes(32)
    # The browser is asked for "preferred" so that the authenticator's answer reaches the
    # server; the server's rule is what is under test.
    options = authentication_options(
        rp, challenge=challenge, allow=[credential.credential_id], require_user_verification=False
    )
    answer = await page.evaluate(GET_JS, options)
    with pytest.raises(CeremonyRejected):
        verify_assertion(
            rp,
            answer,
            challenge=challenge,
            credential_id=credential.credential_id,
            public_key=credential.public_key,
            sign_count=credential.sign_count,
            require_user_verification=True,
        )


async def test_a_browser_refuses_to_sign_when_the_user_is_not_verified(
    phone: tuple[Any, VirtualAuthenticator], blank_origin: str
) -> None:
    page, authenticator = phone
    rp = party(blank_origin)
    credential = await register(page, rp)
    await authenticator.set_user_verified(False)
    answer = await sign(page, rp, credential, secrets.token_bytes(32))
    assert answer == {"error": "NotAllowedError"}


async def test_an_assertion_from_an_origin_outside_the_allow_list_is_refused(
    phone: tuple[Any, VirtualAuthenticator], blank_origin: str
) -> None:
    page, _ = phone
    rp = party(blank_origin)
    credential = await register(page, rp)
    challenge = secrets.token_bytes(32)
    answer = await sign(page, rp, credential, challenge)
    elsewhere = RelyingParty(rp_id="localhost", name="x", origins=("http://localhost:1",))
    with pytest.raises(CeremonyRejected):
        verify_assertion(
            elsewhere,
            answer,
            challenge=challenge,
            credential_id=credential.credential_id,
            public_key=credential.public_key,
            sign_count=credential.sign_count,
        )


async def test_an_assertion_by_another_passkey_than_the_stored_one_is_refused(
    phone: tuple[Any, VirtualAuthenticator], blank_origin: str
) -> None:
    page, _ = phone
    rp = party(blank_origin)
    mine = await register(page, rp)
    other = await register(page, rp)
    challenge = secrets.token_bytes(32)
    answer = await sign(page, rp, other, challenge)
    with pytest.raises(CeremonyRejected):
        verify_assertion(
            rp,
            answer,
            challenge=challenge,
            credential_id=mine.credential_id,
            public_key=mine.public_key,
            sign_count=mine.sign_count,
        )


async def test_registration_is_refused_for_a_challenge_the_server_did_not_issue(
    phone: tuple[Any, VirtualAuthenticator], blank_origin: str
) -> None:
    page, _ = phone
    rp = party(blank_origin)
    options = registration_options(
        rp, challenge=secrets.token_bytes(32), user_handle=b"h", user_name="alice"
    )
    answer = await page.evaluate(CREATE_JS, options)
    with pytest.raises(CeremonyRejected):
        verify_registration(rp, answer, challenge=secrets.token_bytes(32))


@pytest.mark.parametrize(
    ("rp_id", "origins"),
    [
        ("127.0.0.1", ("http://127.0.0.1:5000",)),
        ("example.org", ("http://example.org",)),
        ("example.org", ("https://evil.example",)),
        ("example.org", ()),
        ("example.org", ("https://example.org/path",)),
    ],
)
def test_a_relying_party_that_webauthn_would_not_accept_is_refused_at_start(
    rp_id: str, origins: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError):
        RelyingParty(rp_id=rp_id, name="x", origins=origins)


def test_the_relying_party_of_a_public_url_is_its_host_and_origin() -> None:
    rp = RelyingParty.for_public_url("https://2fa.example.org", "push2fa")
    assert (rp.rp_id, rp.origins) == ("2fa.example.org", ("https://2fa.example.org",))


@pytest.mark.parametrize("garbage", ["", "{", "[]", '{"id": 5}', "x" * 40_000, {"rawId": "!!"}])
def test_garbage_answers_are_refused_cleanly(garbage: Any) -> None:
    rp = party("http://localhost:5000")
    with pytest.raises(CeremonyRejected):
        verify_assertion(
            rp, garbage, challenge=b"c", credential_id=b"id", public_key=b"k", sign_count=0
        )
