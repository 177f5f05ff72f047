"""`RedisLimiter`: one API key's slots and request rate, shared by processes through Redis.

The limiter is the face the client sees and the owner of the background work:
its worker task drives this process's `SlotLedger` (``_redis_slots``) and pushes
the throttles of its `RedisRate` (``_redis_rate``); the Lua scripts they run are
in ``_redis_lua``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import uuid
from types import TracebackType
from typing import Self

import anyio
import anyio.abc
import redis.asyncio
import redis.exceptions

from ._errors import CoordinationUnavailableError
from ._limiter import LimiterStatistics
from ._redis_rate import RedisRate
from ._redis_slots import BACKOFF, RedisSlot, SlotLedger

__all__ = ["RedisLimiter", "RedisSlot"]

log = logging.getLogger("runninghub_async")


def namespace(api_key: str) -> str:
    """The Redis key prefix of one API key: a hash of it, never the key itself."""
    digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:16]
    return f"rh:{{{digest}}}:"


class RedisLimiter:
    """The `Limiter` for several processes sharing one API key, coordinated by Redis.

    Slots are leases in a Redis sorted set, scored by expiry on the Redis
    server's clock; one worker task per process renews all of its leases every
    ``lease / 3`` s, so the slots of a killed process come back within *lease*
    seconds.  Waiters queue in one shared FIFO (a job put back after a 421 goes
    first); a release wakes the others by pub/sub, with polling every
    *poll_interval* s as the fallback, so a lost message never hangs anyone.  The
    adaptive window (shrunk by a 421, grown back by accepted submits) is shared.
    The request rate is GCRA computed by a Lua script on the Redis server's clock:
    no one-second window across all processes sees *requests_per_second* calls
    or more; a throttle (1003/429) halves it for everyone and pauses everyone for
    ``retry_after``.  All keys live under ``rh:{<sha256(api_key)[:16]}>}:``.

    Failure semantics:

    * **Redis restarts empty** (no persistence): leases, queue and window are
      gone.  Each process notices the new epoch as soon as its pub/sub
      connection is back (or at its next step, at the latest its heartbeat
      within ``lease / 3`` s) and, in one round trip, puts back its leases and
      waiting tickets, so the counts rebuild from the live processes.  A
      process asking for a slot before the others re-synced may be granted
      one too many; RunningHub's 421 then shrinks the window.
    * **Redis unreachable**: slots already held stay held and their jobs go on
      (releases are retried until they land or the lease lapses).  A new
      `acquire_slot` waits, retrying, and raises `CoordinationUnavailableError`
      once Redis has been unreachable for *unavailable_timeout* s.
      `acquire_request` fails open: it paces calls by a local bucket at the
      configured rate divided by the number of processes last seen sharing the
      key, and goes back to Redis once it answers again.
    * **Processes configured with different** *max_in_flight*: each grants
      slots under its own limit (they are not reconciled); each logs a
      warning naming both limits once it has seen the difference at two
      heartbeats in a row.
    * **A holder paused past its lease** (a stopped VM, a long GC pause): its
      slot is reclaimed and may be given to another process; on waking, the
      heartbeat marks the slot lost, and its release is a no-op with a warning.

    Enter it with ``async with`` (the client does this when given
    ``RunningHub(limiter=...)``); leaving it releases this process's leases.

    Args:
        client: a ``redis.asyncio.Redis`` (``decode_responses`` off); the limiter
            closes it on exit when made by `from_url`.
        api_key: the RunningHub key whose budget is shared (only its hash is used).
        max_in_flight: the key's concurrency limit, for all processes together.
        requests_per_second: the key's request budget for all processes
            together, or None for no limit.
        lease: seconds a slot stays held without a heartbeat.
        poll_interval: how often waiters look for a slot without being woken.
        unavailable_timeout: how long `acquire_slot` waits for an unreachable Redis.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        api_key: str,
        max_in_flight: int,
        requests_per_second: float | None,
        lease: float = 15.0,
        poll_interval: float = 0.5,
        unavailable_timeout: float = 30.0,
        close_client: bool = False,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
        if requests_per_second is not None and not requests_per_second > 0:
            raise ValueError(
                f"requests_per_second must be > 0 or None, got {requests_per_second!r}"
            )
        if not lease > 0:
            raise ValueError(f"lease must be > 0, got {lease!r}")
        self._redis = client
        self._close_client = close_client
        self.limit = max_in_flight
        self.rate = requests_per_second
        self.lease = lease
        self.poll_interval = poll_interval
        self.unavailable_timeout = unavailable_timeout
        ns = namespace(api_key)
        self.namespace = ns
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._slots = SlotLedger(client, ns, self.process_id, max_in_flight)
        self._rate = RedisRate(client, ns, requests_per_second)
        self._down_since: float | None = None
        self.rejections_absorbed = 0
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        api_key: str,
        max_in_flight: int,
        requests_per_second: float | None,
        lease: float = 15.0,
        poll_interval: float = 0.5,
        unavailable_timeout: float = 30.0,
        socket_timeout: float = 2.0,
    ) -> RedisLimiter:
        """A limiter on the Redis (or Valkey) at *url* (``redis://host:6379/0``).

        *socket_timeout* bounds each Redis call (connect and answer); the other
        arguments are the class's.
        """
        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        return cls(
            client,
            api_key=api_key,
            max_in_flight=max_in_flight,
            requests_per_second=requests_per_second,
            lease=lease,
            poll_interval=poll_interval,
            unavailable_timeout=unavailable_timeout,
            close_client=True,
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<RedisLimiter {self.namespace} in_flight={s.in_flight}/{s.window} "
            f"max={s.max_in_flight} waiting={s.waiting_for_slot} rate={self.rate}>"
        )

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._tg is not None or self._closed:
            raise RuntimeError("a RedisLimiter can be entered only once; make a new one")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(self._worker)
        tg.start_soon(self._slots.listen)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._tg = self._tg, None
        self._closed = True
        if tg is None:
            return
        tg.cancel_scope.cancel()
        try:
            await tg.__aexit__(exc_type, exc, tb)
        finally:
            self._slots.fail_all(CoordinationUnavailableError("the limiter was closed"))
            # Give back everything this process holds, so others need not wait
            # for the leases to lapse.  Best effort, bounded.
            with anyio.move_on_after(2.0, shield=True):
                try:
                    await self._slots.step(
                        lease=self.lease, limit=self.limit, renew=False, leaving=True
                    )
                except redis.exceptions.RedisError as error:
                    log.warning("could not release this process's slots in Redis: %s", error)
            if self._close_client:
                with anyio.CancelScope(shield=True):
                    await self._redis.aclose()

    # -- slots ------------------------------------------------------------------

    async def acquire_slot(self, *, front: bool = False) -> RedisSlot:
        """Wait for a slot of the key, shared FIFO across processes.

        *front* queues ahead of every ordinary waiter (a job put back after a
        421).  Cancel-safe: a cancelled waiter leaves the shared queue, and a slot
        it was just given is released.

        Raises:
            CoordinationUnavailableError: Redis has been unreachable for longer
                than *unavailable_timeout* (or the limiter was closed).
        """
        if self._tg is None:
            raise RuntimeError("the limiter is not open; use `async with`")
        return await self._slots.acquire(front=front)

    def slot_rejected(self) -> None:
        """A submit holding a slot got 421: shrink the shared window to the other slots held."""
        self.rejections_absorbed += 1
        self._slots.window_op("r")

    def slot_accepted(self) -> None:
        """A submit was accepted: grow the shared window back toward the limit."""
        self._slots.accepted(self.limit)

    def set_limit(self, limit: int) -> None:
        """Change max_in_flight (and reset the shared window to it)."""
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        self.limit = limit
        self._slots.window_op("z")

    def try_acquire_slot(self) -> RedisSlot | None:
        """None: a shared slot is only ever granted through Redis (`acquire_slot`)."""
        return None

    def slot_demand(self) -> bool:
        """Whether callers of this process wait for a slot (others' waiters are not seen)."""
        return self._slots.waiting > 0

    def statistics(self) -> LimiterStatistics:
        """A snapshot: the shared window as last seen, and this process's slots and queues."""
        return LimiterStatistics(
            max_in_flight=self.limit,
            window=self._slots.window,
            in_flight=self._slots.in_flight,
            waiting_for_slot=self._slots.waiting,
            waiting_for_rate=self._rate.waiting,
            rejections_absorbed=self.rejections_absorbed,
        )

    async def _worker(self) -> None:
        """The one task that tells Redis about this process's slots, and learns grants."""
        slots = self._slots
        heartbeat_due = -math.inf
        backoff = BACKOFF[0]
        while True:
            now = anyio.current_time()
            if heartbeat_due <= now or slots.resync:
                renew = True
            else:
                if not (slots.has_work or self._rate.throttles_pending):
                    wait = heartbeat_due - now
                    if slots.waiting:
                        wait = min(wait, self.poll_interval)
                    with anyio.move_on_after(wait):
                        await slots.woken()
                slots.rearm()
                # A step that saw Redis lose its data asks for a renewing one.
                renew = heartbeat_due <= anyio.current_time() or slots.resync
            try:
                await self._rate.push_throttles()
                await slots.step(lease=self.lease, limit=self.limit, renew=renew, leaving=False)
            except redis.exceptions.RedisError as error:
                self._unavailable(error)
                await anyio.sleep(backoff)
                backoff = min(BACKOFF[1], backoff * 2)
                # Try again whatever asked for this step: a wake-up with nothing
                # queued (a re-sync after a restart) would otherwise be dropped.
                slots.wake()
                continue
            backoff = BACKOFF[0]
            if self._down_since is not None:
                log.warning("Redis answers again; slots are coordinated again")
                self._down_since = None
            if renew:
                heartbeat_due = anyio.current_time() + self.lease / 3

    def _unavailable(self, error: Exception) -> None:
        now = anyio.current_time()
        if self._down_since is None:
            self._down_since = now
            log.warning("Redis is unreachable (%s); retrying", error)
        failure = CoordinationUnavailableError(
            f"Redis unreachable for {self.unavailable_timeout} s: {error}"
        )
        self._slots.give_up(
            failure, now=now, down_since=self._down_since, timeout=self.unavailable_timeout
        )

    # -- request rate -------------------------------------------------------------

    async def acquire_request(self) -> None:
        """Wait for one call of the key's request budget (shared by every process).

        Fails open: while Redis is unreachable, calls are paced locally at the
        rate divided by the processes last seen sharing the key.
        """
        await self._rate.acquire(self._slots.members)

    def throttled(self, retry_after: float | None = None) -> None:
        """RunningHub said slow down: halve the shared rate, pause everyone *retry_after* s."""
        self.rejections_absorbed += 1
        self._rate.throttled(retry_after)
        self._slots.wake()
