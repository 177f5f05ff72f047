"""A request-rate budget: a token bucket that slows down when told to, and recovers.

`LocalLimiter` puts one over every HTTP call of a client; the poller puts a strict
one over its status checks (``PollPolicy.max_rate``).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import anyio

__all__ = ["Clock", "TokenBucket", "monotonic", "strict_bucket"]

Clock = Callable[[], float]

# After a rate rejection the budget halves, and regains this fraction of its
# configured rate per second of successes: a storm ends in successes, not timeouts.
_DECREASE = 0.5
_RECOVERY_PER_SECOND = 0.05
_FLOOR_FRACTION = 0.05
# With no Retry-After, pause new calls for this long after a rejection.
_DEFAULT_PAUSE = 1.0
_MAX_PAUSE = 60.0


# The event loop's clock: asyncio's ``loop.time()`` (and so ``anyio.current_time``)
# is ``time.monotonic()``; reading it directly skips two lookups per read.
monotonic: Clock = time.monotonic


class TokenBucket:
    """A token bucket: *rate* calls per second, bursts of at most *burst* calls.

    The default burst is a quarter second's worth (at least one call), so no
    one-second window sees more than ``1.25 * rate`` calls.  ``rate=None`` never
    waits.  ``throttle()`` halves the current rate (and pauses); it then recovers
    toward the configured rate as time passes without rejections.
    """

    def __init__(
        self, rate: float | None, burst: float | None = None, *, clock: Clock = monotonic
    ) -> None:
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be > 0 or None, got {rate!r}")
        if burst is not None and burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst!r}")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, (rate or 0) / 4)
        self._clock = clock
        self._current = rate
        self._tokens = self.burst
        self._stamp: float | None = None
        self._paused_until = 0.0
        self._waiters: collections.deque[anyio.Event] = collections.deque()

    @property
    def waiting(self) -> int:
        """Callers waiting for a token."""
        return len(self._waiters)

    @property
    def current_rate(self) -> float | None:
        """The rate in force now (below ``rate`` after a throttle)."""
        return self._current

    def throttle(self, retry_after: float | None = None) -> None:
        """Halve the rate and drain the bank; no call passes for *retry_after* seconds."""
        now = self._clock()
        pause = _DEFAULT_PAUSE if retry_after is None else min(_MAX_PAUSE, max(0.0, retry_after))
        self._paused_until = max(self._paused_until, now + pause)
        if self.rate is not None and self._current is not None:
            self._current = max(self.rate * _FLOOR_FRACTION, self._current * _DECREASE)
            self._tokens = min(self._tokens, 0.0)

    def _take(self, now: float) -> bool:
        rate = self._current
        assert rate is not None
        assert self.rate is not None
        if self._stamp is not None:
            elapsed = now - self._stamp
            self._tokens = min(self.burst, self._tokens + elapsed * rate)
            if rate < self.rate:
                self._current = min(self.rate, rate + elapsed * self.rate * _RECOVERY_PER_SECOND)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def _delay(self, now: float) -> float:
        """Seconds until a call may pass, or 0 after taking a token now."""
        if now < self._paused_until:
            return self._paused_until - now
        if self._current is None or self._take(now):
            return 0.0
        return (1 - self._tokens) / self._current

    def try_take(self) -> bool:
        """Take a token now if one is free and nobody waits (never waits)."""
        if self._current is None and not self._paused_until:
            return not self._waiters  # no rate, never throttled: no clock to read
        return not self._waiters and self._delay(self._clock()) == 0.0

    def acquire_nowait(self) -> None:
        """Take a token now.

        Raises:
            anyio.WouldBlock: no token is free, or others are already waiting.
        """
        if self._waiters or self._delay(self._clock()) > 0:
            raise anyio.WouldBlock

    async def acquire(self) -> None:
        """Wait for a token, in arrival order.

        Returns without yielding when a token is free: this sits on every request's
        path, and an event-loop round trip per call is measurable.
        """
        if self.try_take():
            return
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            if self._waiters[0] is not turn:
                await turn.wait()
            # The head of the queue sleeps exactly until its token is due.
            while (delay := self._delay(self._clock())) > 0:  # noqa: ASYNC110
                await anyio.sleep(delay)
        finally:
            self._waiters.remove(turn)
            if self._waiters:
                self._waiters[0].set()


def strict_bucket(rate: float) -> TokenBucket:
    """A bucket that never lets *rate* calls through in any one second.

    A bucket of burst b and refill r passes at most ``b + r`` calls a second: with
    ``r = rate - b`` that is *rate*.  A small bank (1/20 s) absorbs the time sleeps
    overshoot, which a burst of one would lose.
    """
    burst = max(1.0, rate / 20)
    return TokenBucket(max(rate - burst, rate / 2), burst=burst)
