"""Which ended challenges take their push off the phone: every one the phone did not answer."""

from __future__ import annotations

import pytest

from push2fa.domain.withdrawal import should_withdraw
from push2fa.models import ChallengeStatus as S


@pytest.mark.parametrize(
    ("status", "by"),
    [
        (S.CANCELLED, "browser"),
        (S.CANCELLED, "server"),
        (S.EXPIRED, "sweep"),
        (S.APPROVED, "totp"),
        (S.APPROVED, "recovery"),
    ],
)
def test_pushes_the_phone_did_not_answer_are_withdrawn(status: S, by: str) -> None:
    assert should_withdraw(status, by)


@pytest.mark.parametrize(("status", "by"), [(S.APPROVED, "webhook"), (S.DENIED, "poll")])
def test_answers_from_the_phone_need_no_withdrawal(status: S, by: str) -> None:
    assert not should_withdraw(status, by)
