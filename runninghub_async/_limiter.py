"""Admission control: job slots, and a request-rate budget that slows down when told to.

``Limiter`` and ``Slot`` are the seam the client takes (``RunningHub(limiter=...)``):
`LocalLimiter` is the in-process implementation; a shared, multi-process one
(``runninghub_async.redis.RedisLimiter``) implements the same protocols.

Both queues are FIFO and cancel-safe: a waiter that is cancelled leaves the queue
and, if it had just been handed a slot, passes it on.  A job's `Slot` is released
exactly once, by whoever ends the job; a second release is a no-op.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, Final, Protocol, Self

import anyio
import attrs

__all__ = [
    "Limiter",
    "LimiterStatistics",
    "LocalLimiter",
    "Slot",
    "SlotWindow",
    "TokenBucket",
    "monotonic",
    "strict_bucket",
]

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


@attrs.frozen
class LimiterStatistics:
    """A snapshot of the limiter.

    Attributes:
        max_in_flight: the configured bound on outstanding jobs.
        window: slots usable now (below ``max_in_flight`` after 421s).
        in_flight: slots held by jobs being submitted or outstanding.
        waiting_for_slot: jobs queued locally for a slot.
        waiting_for_rate: HTTP calls waiting for the request budget.
        rejections_absorbed: concurrency and rate rejections turned into waits.
    """

    max_in_flight: int
    window: int
    in_flight: int
    waiting_for_slot: int
    waiting_for_rate: int
    rejections_absorbed: int


class Slot(Protocol):
    """One held job slot.  ``release()`` is synchronous and idempotent."""

    def release(self) -> None:
        """Give the slot back (only the first call counts)."""


class Limiter(Protocol):
    """What ``RunningHub(limiter=...)`` takes.

    The client enters it (``async with limiter``) inside its own ``async with``
    and leaves it on close; an implementation starts and stops its background
    work there.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def acquire_slot(self, *, front: bool = False) -> Slot:
        """Wait (FIFO; *front* queues first) for a job slot."""
        ...

    def try_acquire_slot(self) -> Slot | None:
        """A slot now, without waiting, if one is free and nobody waits; else None.

        An implementation that cannot tell without I/O returns None.
        """
        ...

    def slot_rejected(self) -> None:
        """A submit holding a slot got 421: shrink to the slots held besides it."""

    def slot_accepted(self) -> None:
        """A submit was accepted: grow the window back toward the limit."""

    def set_limit(self, limit: int) -> None:
        """Change the bound on outstanding jobs."""

    def slot_demand(self) -> bool:
        """Whether callers are waiting for a slot now."""
        ...

    def acquire_request(self) -> Awaitable[None]:
        """Wait for one call of the request-rate budget (await the result)."""
        ...

    def throttled(self, retry_after: float | None = None) -> None:
        """The server said "slow down" (1003, 429): lower the rate, pause *retry_after* s."""

    def statistics(self) -> LimiterStatistics:
        """A snapshot."""
        ...


class _Ready:
    """An awaitable that is already done."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # a generator that finishes at once


_READY: Final = _Ready()


class _Waiter:
    """A caller queued for a slot: a plain future (this sits on every queued submit)."""

    __slots__ = ("future", "granted")

    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.granted = False


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


@attrs.define(eq=False)
class _LocalSlot:
    window: SlotWindow
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.window.give_back()


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

    def try_acquire(self) -> Slot | None:
        """A slot now if one is free and nobody waits, else None."""
        if not self._waiters and self._in_use < self.capacity:
            self._in_use += 1
            return _LocalSlot(self)
        return None

    async def acquire(self, *, front: bool = False) -> Slot:
        """Wait for a slot; *front* queues ahead of everyone (a job put back after a rejection).

        Returns without yielding when a slot is free.
        """
        if not self._waiters and self._in_use < self.capacity:
            self._in_use += 1
            return _LocalSlot(self)
        waiter = _Waiter()
        if front:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            await waiter.future
        except BaseException:
            if waiter.granted:
                self.give_back()
            else:
                with contextlib.suppress(ValueError):  # `_grant` may have dropped it
                    self._waiters.remove(waiter)
            raise
        return _LocalSlot(self)

    def give_back(self) -> None:
        """One slot is free again; the longest waiter gets it.  Called by `Slot.release`."""
        if self._in_use <= 0:
            raise RuntimeError("a slot was released more often than acquired")
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
            if waiter.future.done():
                continue  # cancelled: its caller is leaving and takes no slot
            waiter.granted = True
            self._in_use += 1
            waiter.future.set_result(None)


def strict_bucket(rate: float) -> TokenBucket:
    """A bucket that never lets *rate* calls through in any one second.

    A bucket of burst b and refill r passes at most ``b + r`` calls a second: with
    ``r = rate - b`` that is *rate*.  A small bank (1/20 s) absorbs the time sleeps
    overshoot, which a burst of one would lose.
    """
    burst = max(1.0, rate / 20)
    return TokenBucket(max(rate - burst, rate / 2), burst=burst)


class LocalLimiter:
    """The in-process `Limiter`: a `SlotWindow` plus a `TokenBucket` over every HTTP call."""

    def __init__(self, max_in_flight: int, requests_per_second: float | None) -> None:
        self.slots = SlotWindow(max_in_flight)
        self.rate = TokenBucket(requests_per_second)
        self.rejections_absorbed = 0

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def acquire_slot(self, *, front: bool = False) -> Slot:
        """Wait for a job slot (FIFO; *front* first)."""
        return await self.slots.acquire(front=front)

    def try_acquire_slot(self) -> Slot | None:
        """A slot now if one is free and nobody waits, else None (never waits)."""
        return self.slots.try_acquire()

    def slot_rejected(self) -> None:
        """A 421: shrink the window and count the absorbed rejection."""
        self.rejections_absorbed += 1
        self.slots.rejected()

    def slot_accepted(self) -> None:
        """An accepted submit: grow the window back."""
        self.slots.accepted()

    def set_limit(self, limit: int) -> None:
        """Change the bound on outstanding jobs."""
        self.slots.set_limit(limit)

    def slot_demand(self) -> bool:
        """Whether callers wait for a slot."""
        return self.slots.waiting > 0

    def acquire_request(self) -> Awaitable[None]:
        """Wait for the request budget (a free token needs no coroutine: every call asks)."""
        return _READY if self.rate.try_take() else self.rate.acquire()

    def throttled(self, retry_after: float | None = None) -> None:
        """A 1003/429: slow every call of this client down."""
        self.rejections_absorbed += 1
        self.rate.throttle(retry_after)

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
            f"<LocalLimiter in_flight={s.in_flight}/{s.window} max={s.max_in_flight} "
            f"waiting={s.waiting_for_slot} rate={self.rate.current_rate}>"
        )
