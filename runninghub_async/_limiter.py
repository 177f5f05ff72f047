"""Admission control: slots for outstanding jobs, and a token bucket over HTTP calls.

Both queues are FIFO and cancel-safe: a waiter that is cancelled leaves the queue
and, if it had just been handed a slot, passes it on.

The seam for sharing one key's budget across processes (a Redis-backed engine,
say) is the pair of small interfaces ``Slots`` and ``RateGate``: ``Limiter``
only calls the methods they declare.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Protocol

import anyio
import attrs

__all__ = [
    "Limiter",
    "LimiterStatistics",
    "RateGate",
    "SlotWindow",
    "Slots",
    "TokenBucket",
    "monotonic",
]

Clock = Callable[[], float]


def monotonic() -> float:
    """The event loop's clock (what ``anyio.current_time`` reads, without its lookups)."""
    return asyncio.get_running_loop().time()


class RateGate(Protocol):
    """Something that paces calls: ``acquire`` returns when one more may be made."""

    async def acquire(self) -> None: ...


class Slots(Protocol):
    """A bounded pool of job slots whose size may adapt to rejections."""

    async def acquire(self, *, front: bool = False) -> None: ...

    def release(self) -> None: ...

    def rejected(self) -> None: ...

    def accepted(self) -> None: ...


@attrs.define(eq=False)
class _Waiter:
    event: anyio.Event = attrs.field(factory=anyio.Event)
    granted: bool = False


class TokenBucket:
    """A token bucket: *rate* calls per second, bursts of at most *burst* calls.

    The default burst is a quarter second's worth (at least one call), so no
    one-second window sees more than ``1.25 * rate`` calls.  ``rate=None`` never waits.
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
        self._tokens = self.burst
        self._stamp: float | None = None
        self._waiters: collections.deque[anyio.Event] = collections.deque()

    @property
    def waiting(self) -> int:
        """Callers waiting for a token."""
        return len(self._waiters)

    def _take(self) -> bool:
        assert self.rate is not None
        now = self._clock()
        if self._stamp is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def acquire_nowait(self) -> None:
        """Take a token now.

        Raises:
            anyio.WouldBlock: no token is free, or others are already waiting.
        """
        if self.rate is not None and (self._waiters or not self._take()):
            raise anyio.WouldBlock

    async def acquire(self) -> None:
        """Wait for a token, in arrival order.

        Returns without yielding when a token is free: this sits on every request's
        path, and an event-loop round trip per call is measurable.
        """
        if self.rate is None or (not self._waiters and self._take()):
            return
        turn = anyio.Event()
        self._waiters.append(turn)
        try:
            if self._waiters[0] is not turn:
                await turn.wait()
            # The head of the queue sleeps exactly until its token is due.
            while not self._take():  # noqa: ASYNC110
                await anyio.sleep((1 - self._tokens) / self.rate)
        finally:
            self._waiters.remove(turn)
            if self._waiters:
                self._waiters[0].set()


class SlotWindow:
    """Up to *limit* slots, with a window that shrinks on rejection and grows back.

    ``rejected()`` (RunningHub said 421) sets the window to the number of slots
    other jobs hold: that many were accepted, so the account's real limit is
    about there.  ``accepted()`` grows it by ``1 / window``, about one slot per
    window of accepted submits, back up to *limit*.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {limit!r}")
        self.limit = limit
        self._window = float(limit)
        self._in_use = 0
        self._waiters: collections.deque[_Waiter] = collections.deque()

    @property
    def capacity(self) -> int:
        """Slots that may be in use now."""
        return max(1, min(self.limit, int(self._window)))

    @property
    def in_use(self) -> int:
        """Slots held."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Callers waiting for a slot."""
        return len(self._waiters)

    def set_limit(self, limit: int) -> None:
        """Change the upper bound (for ``max_in_flight="auto"``)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        self.limit = limit
        self._window = float(limit)
        self._grant()

    async def acquire(self, *, front: bool = False) -> None:
        """Wait for a slot; *front* queues ahead of everyone (a job put back after a rejection).

        Returns without yielding when a slot is free.
        """
        if not self._waiters and self._in_use < self.capacity:
            self._in_use += 1
            return
        waiter = _Waiter()
        if front:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self.release()
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back; the longest waiter gets it."""
        if self._in_use <= 0:
            raise RuntimeError("release() without a matching acquire()")
        self._in_use -= 1
        self._grant()

    def rejected(self) -> None:
        """RunningHub refused a submit for concurrency: shrink to what is held besides it."""
        self._window = max(1.0, float(self._in_use - 1))

    def accepted(self) -> None:
        """A submit was accepted: grow the window back toward the limit."""
        if self._window < self.limit:
            self._window = min(float(self.limit), self._window + 1 / self._window)
            self._grant()

    def _grant(self) -> None:
        while self._waiters and self._in_use < self.capacity:
            waiter = self._waiters.popleft()
            waiter.granted = True
            self._in_use += 1
            waiter.event.set()


@attrs.frozen
class LimiterStatistics:
    """A snapshot of the limiter.

    Attributes:
        max_in_flight: the configured bound on outstanding jobs.
        window: slots usable now (below ``max_in_flight`` after 421s).
        in_flight: slots held by jobs being submitted or outstanding.
        waiting_for_slot: jobs queued locally for a slot.
        waiting_for_rate: HTTP calls waiting for the token bucket.
        rejections_absorbed: concurrency and rate rejections turned into waits.
    """

    max_in_flight: int
    window: int
    in_flight: int
    waiting_for_slot: int
    waiting_for_rate: int
    rejections_absorbed: int


class Limiter:
    """Slots for outstanding jobs plus a token bucket over every HTTP call."""

    def __init__(self, slots: SlotWindow, rate: TokenBucket) -> None:
        self.slots = slots
        self.rate = rate
        self.rejections_absorbed = 0

    def statistics(self) -> LimiterStatistics:
        """A snapshot of the limiter's state."""
        return LimiterStatistics(
            max_in_flight=self.slots.limit,
            window=self.slots.capacity,
            in_flight=self.slots.in_use,
            waiting_for_slot=self.slots.waiting,
            waiting_for_rate=self.rate.waiting,
            rejections_absorbed=self.rejections_absorbed,
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<Limiter in_flight={s.in_flight}/{s.window} max={s.max_in_flight} "
            f"waiting={s.waiting_for_slot} rate={self.rate.rate}>"
        )
