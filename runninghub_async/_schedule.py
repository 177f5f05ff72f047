"""When to check a job next: pure arithmetic over numbers, no clock reads, no I/O.

The poller asks three questions and this module answers them from what it has
learned of each endpoint's durations: the delay to a job's first check, the
interval between later checks, and the budget that bounds the poller's query rate.
"""

from __future__ import annotations

import bisect
import collections
import random

from ._config import PollPolicy
from ._limiter import TokenBucket

__all__ = ["Durations", "first_delay", "interval", "retry_delay", "strict_bucket"]

# Below this many successful jobs an endpoint's durations are not trusted yet.
_MIN_SAMPLES = 2
# The first check comes at this quantile of learned durations; checks stay dense up to _DENSE_UNTIL.
_FIRST_CHECK = 0.1
_DENSE_UNTIL = 0.9


class Durations:
    """Recent job durations per endpoint, to place checks where jobs tend to end."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._recent: dict[str | None, collections.deque[float]] = {}
        self._sorted: dict[str | None, list[float]] = {}

    def add(self, endpoint: str | None, seconds: float) -> None:
        """Learn that a job of *endpoint* took *seconds*."""
        recent = self._recent.setdefault(endpoint, collections.deque())
        ordered = self._sorted.setdefault(endpoint, [])
        if len(recent) == self._size:
            ordered.pop(bisect.bisect_left(ordered, recent.popleft()))
        recent.append(seconds)
        bisect.insort(ordered, seconds)

    def quantiles(self, endpoint: str | None) -> tuple[float, float, float] | None:
        """(first check, typical, end of dense checks) in seconds, or None while unknown."""
        ordered = self._sorted.get(endpoint)
        if not ordered or len(ordered) < _MIN_SAMPLES:
            return None

        def at(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return at(_FIRST_CHECK), at(0.5), at(_DENSE_UNTIL)

    def typical(self, endpoint: str | None) -> float | None:
        """The median duration of *endpoint*, once known."""
        learned = self.quantiles(endpoint)
        return None if learned is None else learned[1]


def strict_bucket(rate: float) -> TokenBucket:
    """A bucket that never lets *rate* calls through in any one second.

    A bucket of burst b and refill r passes at most ``b + r`` calls a second: with
    ``r = rate - b`` that is *rate*.  A small bank (1/20 s) absorbs the time sleeps
    overshoot, which a burst of one would lose.
    """
    burst = max(1.0, rate / 20)
    return TokenBucket(max(rate - burst, rate / 2), burst=burst)


def first_delay(
    policy: PollPolicy, learned: tuple[float, float, float] | None, rng: random.Random
) -> float:
    """Seconds from submit to a job's first check."""
    if learned is None:
        return policy.initial_delay
    return policy.spread(learned[0], rng)


def interval(
    policy: PollPolicy,
    learned: tuple[float, float, float] | None,
    elapsed: float,
    rng: random.Random,
) -> float:
    """Seconds to the next check of a job *elapsed* seconds old that someone waits for."""
    if learned is None:
        # Nothing known yet: each check at `backoff` times the age of the last one,
        # so a job of any length costs a few checks until its peers teach us more.
        base = elapsed * (policy.backoff - 1)
    else:
        _, typical, dense_until = learned
        base = typical * policy.interval_fraction
        if elapsed > dense_until:
            base = max(base, (elapsed - dense_until) * (policy.backoff - 1))
    return policy.spread(min(policy.max_interval, max(policy.min_interval, base)), rng)


def retry_delay(policy: PollPolicy, failures: int, rng: random.Random) -> float:
    """Seconds to the next try after *failures* failed checks in a row."""
    backoff = policy.min_interval * 2 ** min(failures, 10)
    return policy.spread(min(policy.max_interval, backoff), rng)
