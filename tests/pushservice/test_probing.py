"""The failure limit: a client that keeps failing is stopped until its failures age out."""

from __future__ import annotations

from push2fa.pushservice.probing import FailureLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_is_blocked_after_its_failures_and_free_once_they_age_out() -> None:
    clock = Clock()
    limiter = FailureLimiter(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert not limiter.blocked("203.0.113.9")
        limiter.record("203.0.113.9")

    assert limiter.blocked("203.0.113.9")
    assert not limiter.blocked("198.51.100.1"), "other clients are not affected"
    assert 1 <= limiter.retry_after("203.0.113.9") <= 61
    clock.now += 61
    assert not limiter.blocked("203.0.113.9")
    assert limiter.retry_after("203.0.113.9") == 0


def test_a_flood_of_addresses_keeps_memory_bounded(monkeypatch) -> None:
    from push2fa.pushservice import probing

    monkeypatch.setattr(probing, "MAX_TRACKED_CLIENTS", 100)
    limiter = FailureLimiter(limit=3, window=60, clock=Clock())
    for n in range(1000):
        limiter.record(f"10.0.{n // 256}.{n % 256}")

    assert len(limiter._failures) <= 100
