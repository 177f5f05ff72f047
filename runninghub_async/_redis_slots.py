"""This process's side of a key's shared slots: its waiters and leases, synced with Redis.

Part of ``RedisLimiter``.  `SlotLedger` keeps what this process has asked Redis
for (tickets queued, leases held) and what it still has to tell it (joins,
releases, leaves, window updates), and tells it all in one round trip of the
``SLOTS`` Lua script (`SlotLedger.step`).  The limiter's worker task drives the
steps; callers only touch local state and wake the worker, so releasing a slot
never waits on Redis.  Another process's release reaches this one through
pub/sub (`SlotLedger.listen`).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import anyio
import attrs
import redis.asyncio
import redis.exceptions

from . import _redis_lua as lua

__all__ = ["BACKOFF", "RedisSlot", "SlotLedger"]

log = logging.getLogger("runninghub_async")

BACKOFF = (0.05, 0.5)  # reconnect backoff: first and longest, seconds


@attrs.define(eq=False)
class _Waiter:
    ticket: str
    front: bool
    since: float
    event: anyio.Event = attrs.field(factory=anyio.Event)
    slot: RedisSlot | None = None
    score: str | None = None  # its place in the shared queue, once joined
    error: BaseException | None = None


class RedisSlot:
    """One slot held through a lease in Redis.

    ``release()`` is synchronous and idempotent; the limiter's worker removes the
    lease.  A slot whose lease lapsed (its process was paused past the lease) is
    ``lost``: its release is a no-op, logged as a warning.
    """

    __slots__ = ("_ledger", "id", "lost", "released")

    def __init__(self, ledger: SlotLedger, lease_id: str) -> None:
        self._ledger = ledger
        self.id = lease_id
        self.released = False
        self.lost = False

    def release(self) -> None:
        """Give the slot back (only the first call counts)."""
        if not self.released:
            self.released = True
            self._ledger.release(self)

    def __repr__(self) -> str:
        state = "lost" if self.lost else "released" if self.released else "held"
        return f"<RedisSlot {self.id} {state}>"


class SlotLedger:
    """This process's waiters and leases on one key, and what Redis has yet to hear of them.

    Only the worker task talks to Redis about slots (through `step`), so the
    local state always matches what Redis was last told.

    Attributes:
        channel: the pub/sub channel a release is announced on.
        window: the shared window as last seen.
        members: the processes sharing the key, as last seen (at least 1).
        resync: Redis was seen to have lost its data: the next step must renew.
    """

    def __init__(
        self, client: redis.asyncio.Redis, namespace: str, process_id: str, limit: int
    ) -> None:
        self._redis = client
        self._process_id = process_id
        self._keys = [namespace + k for k in ("leases", "queue", "tickets", "window", "epoch")]
        self._keys += [namespace + "members", namespace + "limits"]
        self.channel = namespace + "released"
        self._ids = itertools.count()
        self._script = client.register_script(lua.SLOTS)
        self._waiters: dict[str, _Waiter] = {}
        self._held: dict[str, RedisSlot] = {}
        self._to_join: list[_Waiter] = []
        self._to_release: list[str] = []
        self._retried: set[str] = set()  # releases sent by a step that failed
        self._to_leave: list[str] = []
        self._window_ops: list[str] = []
        self._kick = anyio.Event()
        self._epoch = ""
        self.window = limit
        self.members = 1
        self.resync = False
        self._other_limits: set[int] = set()  # as seen at the last heartbeat
        self._warned_limits: set[int] = set()

    @property
    def waiting(self) -> int:
        """How many callers of this process wait for a slot."""
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        """How many slots this process holds."""
        return len(self._held)

    @property
    def has_work(self) -> bool:
        """Whether something waits to be told to Redis."""
        pending = self._to_join or self._to_release or self._to_leave
        return bool(pending or self._window_ops)

    # -- waking the worker --------------------------------------------------------

    def wake(self) -> None:
        """Have the worker talk to Redis now rather than at its next poll or heartbeat."""
        self._kick.set()

    async def woken(self) -> None:
        """Wait for a `wake` (one since the last `rearm` returns at once)."""
        await self._kick.wait()

    def rearm(self) -> None:
        """Forget the wake-ups so far: the step about to run does what they asked for."""
        self._kick = anyio.Event()

    async def listen(self) -> None:
        """Wake the worker when another process releases a slot (polling backs this up)."""
        backoff = BACKOFF[0]
        own = self._process_id.encode()
        reconnected = False
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                if reconnected:
                    # Releases may have been missed, and Redis may have restarted
                    # empty: a step now finds out (and re-syncs) without waiting
                    # for the poll or the heartbeat.
                    self._kick.set()
                backoff = BACKOFF[0]
                while True:
                    # A bounded wait: a blocking read would hit the socket timeout.
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("data") != own:
                        self._kick.set()
            except redis.exceptions.RedisError:
                reconnected = True
                await anyio.sleep(backoff)
                backoff = min(BACKOFF[1], backoff * 2)
            finally:
                with anyio.CancelScope(shield=True):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    # -- what callers do ------------------------------------------------------------

    async def acquire(self, *, front: bool) -> RedisSlot:
        """Queue a ticket, wait for the worker to be granted it, and return its slot.

        Cancel-safe: a cancelled waiter leaves the shared queue, and a slot it
        was just given is released.

        Raises:
            CoordinationUnavailableError: the error a waiter was failed with
                (Redis unreachable too long, or the limiter closed).
        """
        waiter = _Waiter(f"{self._process_id}:{next(self._ids):012d}", front, anyio.current_time())
        self._waiters[waiter.ticket] = waiter
        self._to_join.append(waiter)
        self._kick.set()
        try:
            await waiter.event.wait()
        except BaseException:
            self._abandon(waiter)
            raise
        if waiter.error is not None:
            raise waiter.error
        assert waiter.slot is not None
        return waiter.slot

    def _abandon(self, waiter: _Waiter) -> None:
        if waiter.slot is not None:
            waiter.slot.release()
            return
        self._waiters.pop(waiter.ticket, None)
        if waiter in self._to_join:
            self._to_join.remove(waiter)  # never told to Redis
        else:
            self._to_leave.append(waiter.ticket)
            self._kick.set()

    def release(self, slot: RedisSlot) -> None:
        """Queue the release of *slot*'s lease (a lost slot's is a no-op, with a warning)."""
        if self._held.pop(slot.id, None) is None:
            log.warning("slot %s was reclaimed (its lease lapsed); release is a no-op", slot.id)
            return
        self._to_release.append(slot.id)
        self._kick.set()

    def window_op(self, op: str) -> None:
        """Queue a window update: ``"r"`` rejected, ``"a"`` accepted, ``"z"`` reset."""
        self._window_ops.append(op)
        self._kick.set()

    def accepted(self, limit: int) -> None:
        """Queue a grow of the window, unless it is known to be at *limit* already."""
        if self.window < limit or self._window_ops:
            self.window_op("a")

    def fail_all(self, error: BaseException) -> None:
        """Wake every waiter with *error* (the limiter is closing)."""
        for waiter in list(self._waiters.values()):
            waiter.error = error
            waiter.event.set()

    def give_up(
        self, error: BaseException, *, now: float, down_since: float, timeout: float
    ) -> None:
        """Fail with *error* the waiters that have waited *timeout* s for an unreachable Redis."""
        for waiter in list(self._waiters.values()):
            if now - max(down_since, waiter.since) >= timeout:
                self._waiters.pop(waiter.ticket)
                if waiter in self._to_join:
                    self._to_join.remove(waiter)
                else:
                    self._to_leave.append(waiter.ticket)
                waiter.error = error
                waiter.event.set()

    # -- the round trip ---------------------------------------------------------------

    async def step(self, *, lease: float, limit: int, renew: bool, leaving: bool) -> None:
        """Tell Redis everything queued, renew the leases if *renew*, and hand out grants.

        *leaving* gives back every lease and ticket of this process instead.

        Raises:
            redis.exceptions.RedisError: Redis was not told; what was queued
                stays queued for the next step.
        """
        joins, self._to_join = self._to_join, []
        releases, self._to_release = self._to_release, []
        leaves, self._to_leave = self._to_leave, []
        ops, self._window_ops = self._window_ops, []
        if leaving:
            releases += list(self._held)
            leaves += [w.ticket for w in self._waiters.values() if w.score is not None]
            joins = []
        waiting = [w for w in self._waiters.values() if w.score is not None]
        held = list(self._held) if renew else []
        args: list[Any] = [
            lease,
            limit,
            self._process_id + ":",
            self._process_id,
            uuid.uuid4().hex,
            self._epoch,
            int(renew),
            "".join(ops),
            self.channel,
            int(leaving),
        ]
        args += _counted(releases)
        args += _counted(leaves)
        args += _pairs([(w.ticket, int(w.front)) for w in joins])
        args += _counted(held)
        args += _pairs([(w.ticket, w.score) for w in waiting] if renew else [])
        try:
            reply = await self._script(keys=self._keys, args=args)
        except BaseException:
            # Not told (or not known to be told): tell it again next time.  A
            # waiter that left meanwhile is not re-joined; a repeated release or
            # leave is harmless.
            self._to_join[:0] = [w for w in joins if w.ticket in self._waiters]
            self._to_release[:0] = releases
            self._to_leave[:0] = leaves
            self._window_ops[:0] = ops
            self._retried.update(releases)
            raise
        epoch, window, _, granted, expired, lost, scores, members, limits = reply
        # A release already made by a step whose answer was lost, or one of a
        # lease Redis forgot in a restart, finds nothing: no lease lapsed.
        quiet = {r for r in releases if r in self._retried}
        self._retried.difference_update(releases)
        forgot = bool(self._epoch) and epoch.decode() != self._epoch
        if renew:
            self._epoch = epoch.decode()
            self.members = max(1, int(members))
            self.resync = False
            if not leaving:
                self._check_limits(limit, limits)
        elif forgot:
            # Redis lost its data: rebuild at once, not at the next heartbeat.
            # Only a renewing step rebuilds (and learns the new epoch), so ask
            # for one: another plain step would see the new epoch again, and
            # wake the worker again, round after round until the heartbeat.
            self.resync = True
            self._kick.set()
        self.window = int(window)
        for joined, score in zip(joins, scores, strict=True):
            joined.score = score.decode()
        for raw in expired:
            if not forgot and raw.decode() not in quiet:
                log.warning(
                    "slot %s had been reclaimed (its lease lapsed) when released", raw.decode()
                )
        for raw in lost:
            slot = self._held.pop(raw.decode(), None)
            if slot is not None:
                slot.lost = True
                log.warning(
                    "slot %s was reclaimed while held (this process was paused past "
                    "its %s s lease)",
                    slot.id,
                    lease,
                )
        for raw in granted:
            ticket = raw.decode()
            waiter = self._waiters.pop(ticket, None)
            if waiter is None:
                continue  # it left meanwhile; the leave queued then drops the lease
            waiter.slot = RedisSlot(self, ticket)
            self._held[ticket] = waiter.slot
            waiter.event.set()

    def _check_limits(self, limit: int, others: Sequence[bytes]) -> None:
        """Warn (once per value) of another process's different max_in_flight.

        Only a difference seen at two heartbeats in a row counts: a process
        whose limit is set after it joined (``max_in_flight="auto"``) differs
        for a moment, and is not misconfigured.
        """
        differing = {int(raw) for raw in others} - {limit}
        for other in sorted((differing & self._other_limits) - self._warned_limits):
            self._warned_limits.add(other)
            log.warning(
                "processes sharing this key disagree on max_in_flight: this one has %d, "
                "another has %d; each grants slots under its own limit, so the key may "
                "run more jobs than the lower one allows, or waiters of the one with the "
                "higher limit may wait behind the other's; give every process the same "
                "max_in_flight",
                limit,
                other,
            )
        self._other_limits = differing


def _counted(items: Sequence[str]) -> list[Any]:
    return [len(items), *items]


def _pairs(items: Sequence[tuple[str, Any]]) -> list[Any]:
    return [len(items), *itertools.chain.from_iterable(items)]
