"""Password-reset tokens on their own: genuine, fresh, for the current password, once.

The reset pages are covered end to end by tests/web/auth/test_password_reset.py; these call
read_reset_token and spend_token directly, including the attacks a page test cannot reach
(a signed token naming another account, a payload of the wrong shape, two spends at once).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select

from push2fa.domain import reset_tokens
from push2fa.domain.reset_tokens import SALT, make_reset_token, read_reset_token, spend_token
from push2fa.models import UsedToken, User
from push2fa.services import Services
from tests.conftest import TEST_SECRET


async def add_user(svc: Services, name: str, password_hash: str | None = None) -> User:
    async with svc.db.session() as db:
        person = User(
            username=name, email=f"{name}@example.com", password_hash=password_hash or f"h-{name}"
        )
        db.add(person)
        await db.commit()
        return person


async def read(svc: Services, token: str) -> tuple[User, str] | None:
    async with svc.db.session() as db:
        return await read_reset_token(db, TEST_SECRET, token)


def signed(payload: Any, *, secret: str = TEST_SECRET, age_seconds: int = 0) -> str:
    """A token with any payload, signed with the site's key (or another) `age_seconds` ago."""
    issued_at = int(time.time()) - age_seconds

    class SignedThen(TimestampSigner):
        def get_timestamp(self) -> int:
            return issued_at

    return URLSafeTimedSerializer(secret, salt=SALT, signer=SignedThen).dumps(payload)


def payload_of(token: str) -> dict[str, Any]:
    loaded: dict[str, Any] = URLSafeTimedSerializer(TEST_SECRET, salt=SALT).loads(token)
    return loaded


async def used_tokens(svc: Services) -> int:
    async with svc.db.session() as db:
        return int((await db.execute(select(func.count()).select_from(UsedToken))).scalar_one())


async def test_a_fresh_token_names_its_user_and_a_token_id(svc):
    alice = await add_user(svc, "alice")
    token = make_reset_token(TEST_SECRET, alice)
    found = await read(svc, token)
    assert found is not None
    user, token_id = found
    assert user.id == alice.id
    assert token_id == payload_of(token)["j"]


async def test_each_token_has_its_own_id(svc):
    alice = await add_user(svc, "alice")
    ids = {payload_of(make_reset_token(TEST_SECRET, alice))["j"] for _ in range(5)}
    assert len(ids) == 5


async def test_the_token_does_not_carry_the_password_hash(svc):
    alice = await add_user(svc, "alice", "$2b$04$secret-hash-material")
    payload = payload_of(make_reset_token(TEST_SECRET, alice))
    assert "secret-hash-material" not in str(payload)
    assert payload["p"] != alice.password_hash


async def test_a_token_dies_when_the_password_changes(svc):
    alice = await add_user(svc, "alice", "old-hash")
    token = make_reset_token(TEST_SECRET, alice)
    async with svc.db.session() as db:
        row = await db.get(User, alice.id)
        assert row is not None
        row.password_hash = "new-hash"
        await db.commit()
    assert await read(svc, token) is None


async def test_a_token_signed_for_one_account_does_not_open_another(svc):
    """Someone who could sign (or a payload edited before signing) swaps the user id: the
    fingerprint is of the first account's password, so the second refuses it."""
    alice = await add_user(svc, "alice", "alice-hash")
    bob = await add_user(svc, "bob", "bob-hash")
    payload = payload_of(make_reset_token(TEST_SECRET, alice))
    assert await read(svc, signed({**payload, "u": bob.id})) is None
    assert await read(svc, signed(payload)) is not None  # the original shape still works


async def test_a_fingerprint_that_matches_only_in_part_is_refused(svc):
    alice = await add_user(svc, "alice", "alice-hash")
    payload = payload_of(make_reset_token(TEST_SECRET, alice))
    for fingerprint in (payload["p"][:8], payload["p"] + "0", "", payload["p"].upper()):
        assert await read(svc, signed({**payload, "p": fingerprint})) is None


async def test_a_token_for_a_deleted_account_is_refused(svc):
    alice = await add_user(svc, "alice")
    token = make_reset_token(TEST_SECRET, alice)
    async with svc.db.session() as db:
        row = await db.get(User, alice.id)
        await db.delete(row)
        await db.commit()
    assert await read(svc, token) is None


async def test_a_token_signed_with_another_key_is_refused(svc):
    alice = await add_user(svc, "alice")
    payload = payload_of(make_reset_token(TEST_SECRET, alice))
    assert await read(svc, signed(payload, secret="another-secret-key-of-enough-length")) is None


async def test_a_token_signed_for_another_purpose_is_refused(svc):
    """The same key signs other things; the salt keeps them from being reset links."""
    alice = await add_user(svc, "alice")
    payload = payload_of(make_reset_token(TEST_SECRET, alice))
    other = URLSafeTimedSerializer(TEST_SECRET, salt="push2fa something else").dumps(payload)
    assert await read(svc, other) is None


async def test_a_token_works_for_thirty_minutes_and_not_after(svc):
    alice = await add_user(svc, "alice")
    payload = payload_of(make_reset_token(TEST_SECRET, alice))
    limit = int(reset_tokens.RESET_MAX_AGE.total_seconds())
    assert await read(svc, signed(payload, age_seconds=limit - 60)) is not None
    assert await read(svc, signed(payload, age_seconds=limit + 60)) is None


@pytest.mark.parametrize(
    "payload",
    [
        {"u": 1, "p": "x"},  # no token id
        {"p": "x", "j": "y"},  # no user
        {"u": True, "p": "x", "j": "y"},  # true is not row 1
        {"u": 2**40, "p": "x", "j": "y"},  # past the id column
        {"u": -1, "p": "x", "j": "y"},
        {"u": "1; drop", "p": "x", "j": "y"},
        {"u": None, "p": "x", "j": "y"},
        {"u": [1], "p": "x", "j": "y"},
        ["u", "p", "j"],
        "a string",
        12,
        None,
    ],
)
async def test_a_signed_payload_of_the_wrong_shape_is_refused_cleanly(svc, payload):
    alice = await add_user(svc, "alice")
    assert alice.id == 1  # so that a payload naming 1 would name her
    assert await read(svc, signed(payload)) is None


@pytest.mark.parametrize("token", ["", "x", "a.b.c", "a" * 5000, "..", "\x00", "é.é"])
async def test_garbage_is_refused_cleanly(svc, token):
    assert await read(svc, token) is None


async def test_a_spent_token_is_refused(svc):
    alice = await add_user(svc, "alice")
    token = make_reset_token(TEST_SECRET, alice)
    async with svc.db.session() as db:
        found = await read_reset_token(db, TEST_SECRET, token)
        assert found is not None
        assert await spend_token(db, found[1]) is True
        await db.commit()
    assert await read(svc, token) is None


async def test_spending_one_token_leaves_another_usable(svc):
    """Single use is per token; a password change is what voids the rest (above)."""
    alice = await add_user(svc, "alice")
    first, second = make_reset_token(TEST_SECRET, alice), make_reset_token(TEST_SECRET, alice)
    async with svc.db.session() as db:
        assert await spend_token(db, payload_of(first)["j"]) is True
        await db.commit()
    assert await read(svc, first) is None
    assert await read(svc, second) is not None


async def test_spending_twice_is_refused_and_changes_nothing(svc):
    alice = await add_user(svc, "alice")
    token_id = payload_of(make_reset_token(TEST_SECRET, alice))["j"]
    async with svc.db.session() as db:
        assert await spend_token(db, token_id) is True
        await db.commit()
    async with svc.db.session() as db:
        assert await spend_token(db, token_id) is False
        await db.commit()
    assert await used_tokens(svc) == 1


async def test_two_requests_spending_one_token_at_once_succeed_once(svc):
    """Both read the token while it is unused; the database decides who spends it."""
    alice = await add_user(svc, "alice")
    token = make_reset_token(TEST_SECRET, alice)
    both_read = asyncio.Barrier(2)

    async def reset() -> bool:
        async with svc.db.session() as db:
            found = await read_reset_token(db, TEST_SECRET, token)
            assert found is not None
            await both_read.wait()
            spent = await spend_token(db, found[1])
            await db.commit()
            return spent

    outcomes = await asyncio.gather(reset(), reset())
    assert sorted(outcomes) == [False, True]
    assert await used_tokens(svc) == 1


async def test_a_spent_token_is_remembered_as_long_as_it_could_be_used(svc):
    alice = await add_user(svc, "alice")
    token_id = payload_of(make_reset_token(TEST_SECRET, alice))["j"]
    async with svc.db.session() as db:
        assert await spend_token(db, token_id) is True
        await db.commit()
        row = await db.get(UsedToken, token_id)
        assert row is not None
        assert row.expires_at - row.used_at >= reset_tokens.RESET_MAX_AGE - timedelta(seconds=5)
