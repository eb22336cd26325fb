"""The canonical decision record: the exact bytes the phone signs and the server rebuilds."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from push2fa.pushservice.approver.rules import canonical_record, record_challenge

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_the_record_is_sorted_compact_and_domain_separated() -> None:
    record = canonical_record(
        request_id="r-1", decision="approve", number="42", nonce=b"\x00\x01", expires_at=WHEN
    )
    assert record == (
        b'{"decision":"approve","exp":1796040000,"nonce":"AAE","number":"42",'
        b'"purpose":"push2fa-approver-decision","request":"r-1","v":1}'
    )
    assert record_challenge(record) == hashlib.sha256(record).digest()


def test_every_field_changes_what_is_signed() -> None:
    base = {
        "request_id": "r-1",
        "decision": "approve",
        "number": "42",
        "nonce": b"n",
        "expires_at": WHEN,
    }
    changes = {
        "request_id": "r-2",
        "decision": "deny",
        "number": "24",
        "nonce": b"m",
        "expires_at": WHEN.replace(minute=1),
    }
    signed = record_challenge(canonical_record(**base))  # type: ignore[arg-type]
    for field, value in changes.items():
        other = canonical_record(**{**base, field: value})  # type: ignore[arg-type]
        assert record_challenge(other) != signed, field
