"""Per-key request rate limiting (errorCode 1003)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["KeyedRateLimiter"]


class KeyedRateLimiter:
    """A token bucket per API key: refills at *rate* per second, holds at most ``max(1, rate)``.

    A request that finds less than one token is refused and takes nothing, so a
    client that backs off gets through again as soon as the bucket refills.  With
    *rate* None every request passes.
    """

    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"rate_limit must be > 0 requests per second, got {rate!r}")
        self._rate = rate
        self._burst = max(1.0, rate or 1.0)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        """Take a token for *key*; False when the key is over its rate."""
        if self._rate is None:
            return True
        now = self._clock()
        tokens, last = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        return allowed
