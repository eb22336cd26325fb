"""Request rate limits: per IP on every form, and per account on the password step.

Keys come from web/limit_keys.py: the address the trusted proxies vouch for (the
library's default would read the client's own X-Forwarded-For) and the resolved account.

Backed by Redis when PUSH2FA_REDIS_URL is set (so every worker shares the counters),
otherwise in memory. Every route states its limit or an explicit exemption; a policy test
walks the URL map to keep it that way.
"""

from __future__ import annotations

from datetime import timedelta

from quart import Quart, request
from quart_rate_limiter import RateLimit, RateLimiter, rate_exempt, rate_limit
from quart_rate_limiter.store import MemoryStore, RateLimiterStoreABC

from push2fa.config import Settings
from push2fa.web.limit_keys import account_key, client_key

__all__ = ["init_limits", "per_ip_and_account", "posts_only", "rate_exempt", "rate_limit"]

MINUTE = timedelta(minutes=1)


async def _is_get() -> bool:
    return request.method in {"GET", "HEAD", "OPTIONS"}


def posts_only(count: int, period: timedelta = MINUTE) -> RateLimit:
    """A per-IP limit on submissions; page views of the same route do not count."""
    return RateLimit(count, period, skip_function=_is_get)


def per_ip_and_account(ip_count: int, account_count: int) -> list[RateLimit]:
    """Password guessing is throttled per address and per targeted account."""
    return [
        posts_only(ip_count),
        RateLimit(account_count, MINUTE, key_function=account_key, skip_function=_is_get),
    ]


def _store(settings: Settings) -> RateLimiterStoreABC:
    if settings.redis_url:
        from quart_rate_limiter.redis_store import RedisStore

        return RedisStore(settings.redis_url)
    return MemoryStore()


def init_limits(app: Quart, settings: Settings) -> RateLimiter:
    return RateLimiter(
        app, key_function=client_key, store=_store(settings), enabled=settings.rate_limits
    )
