"""Untrusted ids: only a positive whole number that fits the column is a row id; anything
else is "no such thing" (None), never a value that makes the database raise."""

from __future__ import annotations

from typing import Any

import pytest

from push2fa.domain.inputs import MAX_BIGINT, MAX_ROW_ID, parse_id
from push2fa.models import User


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1, 1),
        ("1", 1),
        ("42", 42),
        ("007", 7),
        (MAX_ROW_ID, MAX_ROW_ID),
        (str(MAX_ROW_ID), MAX_ROW_ID),
    ],
)
def test_a_positive_id_that_fits_the_column_is_read(raw: Any, expected: int) -> None:
    assert parse_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        0,
        "0",
        -1,
        "-1",
        "+1",
        " 1",
        "1 ",
        "1.0",
        1.0,
        "1e3",
        "0x10",
        "",
        "abc",
        None,
        [],
        {},
        [1],
        {"id": 1},
    ],
)
def test_anything_but_a_positive_whole_number_is_no_id(raw: Any) -> None:
    assert parse_id(raw) is None


@pytest.mark.parametrize("raw", [True, False])
def test_a_json_boolean_is_not_the_id_one(raw: bool) -> None:
    """`True == 1` in Python: a body {"id": true} must not name row 1."""
    assert parse_id(raw) is None


@pytest.mark.parametrize("raw", ["²", "١", "1²", "１", "٣٤"])
def test_unicode_digits_are_no_id(raw: str) -> None:
    """`str.isdigit()` is true for these; only ASCII digits make an id."""
    assert parse_id(raw) is None


@pytest.mark.parametrize("raw", [MAX_ROW_ID + 1, str(MAX_ROW_ID + 1), 2**63, 10**30])
def test_an_id_past_the_integer_column_is_no_id(raw: Any) -> None:
    assert parse_id(raw) is None


def test_a_bigint_column_takes_ids_up_to_its_own_limit() -> None:
    assert parse_id(str(MAX_BIGINT), maximum=MAX_BIGINT) == MAX_BIGINT
    assert parse_id(MAX_BIGINT + 1, maximum=MAX_BIGINT) is None
    assert parse_id("9" * 19, maximum=MAX_BIGINT) is None  # 19 digits, past 2^63 - 1


def test_a_huge_digit_string_is_refused_without_converting_it() -> None:
    """Python refuses int() of very long strings (ValueError); the length check comes first."""
    assert parse_id("9" * 5000) is None
    assert parse_id("0" * 20 + "1") is None  # more than 19 digits, even if small


async def test_every_id_it_accepts_can_be_looked_up_in_the_database(app: Any) -> None:
    """The limits match the real columns: the largest accepted id is a lookup that finds
    nothing, on SQLite and on PostgreSQL alike, instead of a server error."""
    async with app.extensions["push2fa"].db.session() as db:
        for raw in ("1", str(MAX_ROW_ID)):
            number = parse_id(raw)
            assert number is not None
            assert await db.get(User, number) is None
