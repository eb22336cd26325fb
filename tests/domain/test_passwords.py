"""Password rules and bcrypt hashing off the event loop (push2fa/domain/passwords.py)."""

from __future__ import annotations

import asyncio
import time

import bcrypt
import pytest

from push2fa.domain.passwords import hash_password, password_problem, verify_password

ROUNDS = 4


@pytest.mark.parametrize(
    "password",
    ["12345678", "a" * 72, "€" * 24, "😀" * 18, "ü" * 36, "a" * 70 + "ü"],
    ids=["8-bytes", "72-ascii", "24-euro", "18-emoji", "36-umlauts", "70-ascii-plus-umlaut"],
)
def test_passwords_of_8_to_72_bytes_are_acceptable(password: str):
    assert password_problem(password) is None


@pytest.mark.parametrize(
    ("password", "size"),
    [("a" * 73, 73), ("€" * 25, 75), ("😀" * 19, 76), ("a" * 71 + "ü", 73)],
    ids=["73-ascii", "25-euro", "19-emoji", "71-ascii-plus-umlaut"],
)
def test_passwords_over_72_bytes_get_a_message_with_their_size(password: str, size: int):
    problem = password_problem(password)

    assert problem is not None
    assert "at most 72 bytes" in problem
    assert f"yours is {size}" in problem


@pytest.mark.parametrize("password", ["", "1234567", "ü" * 3 + "a"], ids=["empty", "7", "7-bytes"])
def test_passwords_under_8_bytes_are_too_short(password: str):
    problem = password_problem(password)

    assert problem is not None
    assert "at least 8" in problem


async def test_hash_is_bcrypt_at_the_configured_cost_and_verifies():
    hashed = await hash_password("correct horse", ROUNDS)

    assert hashed.startswith("$2b$04$")
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    assert await verify_password("correct horse", hashed, ROUNDS)
    assert not await verify_password("correct horsE", hashed, ROUNDS)


async def test_same_password_hashes_differently_each_time():
    assert await hash_password("correct horse", ROUNDS) != await hash_password(
        "correct horse", ROUNDS
    )


async def test_multibyte_password_of_exactly_72_bytes_round_trips():
    password = "€" * 24
    hashed = await hash_password(password, ROUNDS)

    assert await verify_password(password, hashed, ROUNDS)
    assert not await verify_password("€" * 23, hashed, ROUNDS)


async def test_hashing_a_password_over_72_bytes_is_refused():
    with pytest.raises(ValueError, match="72 bytes"):
        await hash_password("a" * 73, ROUNDS)


async def test_password_over_72_bytes_never_matches_its_prefix():
    hashed = await hash_password("p" * 72, ROUNDS)

    assert not await verify_password("p" * 72 + "q", hashed, ROUNDS)


async def test_unknown_user_is_checked_against_a_dummy_hash_and_fails():
    assert not await verify_password("anything at all", None, ROUNDS)
    assert not await verify_password("p" * 100, None, ROUNDS)


async def test_unknown_user_costs_a_bcrypt_check_of_the_same_cost():
    rounds = 10
    hashed = await hash_password("the real one", rounds)
    await verify_password("warm the dummy", None, rounds)

    started = time.perf_counter()
    await verify_password("wrong", hashed, rounds)
    known = time.perf_counter() - started
    started = time.perf_counter()
    await verify_password("wrong", None, rounds)
    unknown = time.perf_counter() - started

    # Same cost factor, so the same work; a cheap dummy would be 10x faster or more.
    assert unknown > known / 3


async def test_corrupt_stored_hash_does_not_verify():
    assert not await verify_password("password", "not a bcrypt hash", ROUNDS)


async def test_hashing_does_not_block_the_event_loop():
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    await hash_password("correct horse", 12)
    took = time.perf_counter() - started
    done.set()
    await ticking

    assert took > 0.1, "cost 12 should take a noticeable time"
    assert max(gaps) < took / 2, f"the loop stalled for {max(gaps):.3f}s of {took:.3f}s"
