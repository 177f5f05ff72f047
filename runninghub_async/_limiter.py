"""Admission control: job slots, and a request-rate budget (`_bucket`) over every call.

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
from collections.abc import Awaitable, Generator
from types import TracebackType
from typing import Any, Final, Protocol, Self

import attrs

from ._bucket import TokenBucket, monotonic, strict_bucket

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
