"""TOTP as the Authy app computes it: RFC 6238, SHA-1, 30 s, 7 digits, one step of slack."""

from __future__ import annotations

from push2fa.pushservice import totp

RFC_SECRET = b"12345678901234567890"


def test_codes_match_rfc_6238_sha1_vectors_cut_to_seven_digits() -> None:
    # RFC 6238 appendix B gives 8 digits; Authy shows the last 7.
    for unix_time, eight_digits in [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
    ]:
        assert totp.code_at(RFC_SECRET, unix_time) == eight_digits[1:]


def test_window_accepts_one_step_either_side_only() -> None:
    now = 1_700_000_015.0
    step = totp.step_at(now)
    for offset in (-1, 0, 1):
        code = totp.code_for_step(RFC_SECRET, step + offset)
        assert totp.matching_step(RFC_SECRET, code, now) == step + offset
    for offset in (-2, 2):
        code = totp.code_for_step(RFC_SECRET, step + offset)
        assert totp.matching_step(RFC_SECRET, code, now) is None


def test_seconds_left_counts_down_within_a_step() -> None:
    step_start = 1_699_999_980.0  # a multiple of 30
    assert totp.seconds_left(step_start) == 30
    assert totp.seconds_left(step_start + 10) == 20
    assert totp.seconds_left(step_start + 29.9) == 1


def test_new_secrets_are_random_160_bit() -> None:
    assert len(totp.new_secret()) == 20
    assert totp.new_secret() != totp.new_secret()
