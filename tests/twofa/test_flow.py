"""What the pages say when no push may be sent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from push2fa.models import utcnow
from push2fa.protection import PushVerdict
from push2fa.twofa.flow import verdict_message


@pytest.mark.parametrize("reason", ["reported", "budget"])
def test_the_wait_before_the_next_push_reads_as_english(reason: str):
    message = verdict_message(PushVerdict(False, reason, utcnow() + timedelta(seconds=50)))

    assert "until in" not in message
    assert "in 1 minute (" in message
