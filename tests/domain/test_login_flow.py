"""What the pages say when no push may be sent."""

from __future__ import annotations

from datetime import timedelta

from push2fa.domain.login_flow import verdict_message
from push2fa.domain.push_budget import LOCKED, REPORTED, SPENT, PushVerdict
from push2fa.models import utcnow


def test_the_pause_after_a_report_reads_as_english():
    message = verdict_message(PushVerdict(False, REPORTED, utcnow() + timedelta(seconds=50)))

    assert "until in" not in message
    assert "in 1 minute (" in message
    assert "recovery code" in message


def test_a_spent_budget_names_the_ways_back_in_and_no_time():
    """The budget does not refill by time (NIST SP 800-63B-4): no "in N minutes"."""
    message = verdict_message(PushVerdict(False, SPENT))

    assert "minute" not in message
    assert "recovery code" in message and "e-mail" in message


def test_a_locked_account_is_pointed_at_a_recovery_code():
    message = verdict_message(PushVerdict(False, LOCKED))

    assert "recovery code" in message
