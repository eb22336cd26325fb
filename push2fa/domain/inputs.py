"""Untrusted values turned into what the database can hold, or refused.

A number from a URL, a cookie or a JSON body is only a row id if it fits the column:
SQLite refuses integers past 2^63 and PostgreSQL's `integer` columns stop at 2^31, and
either refusal would surface as a server error instead of "no such thing". Only ASCII
digits count: `str.isdigit()` also accepts "²" and other digits `int()` rejects.
"""

from __future__ import annotations

from typing import Any

MAX_ROW_ID = 2**31 - 1  # `Integer` primary keys (PostgreSQL int4)
MAX_BIGINT = 2**63 - 1  # `BigInteger` columns (authy ids)


def parse_id(value: Any, maximum: int = MAX_ROW_ID) -> int | None:
    """A positive id from a JSON number or a string of ASCII digits; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
    else:
        return None
    return number if 0 < number <= maximum else None
