"""`RedisJournal`: the submit journal in Redis, shared by workers that take over items."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

import anyio
import redis.asyncio
import redis.exceptions

from . import _redis_lua as lua
from ._errors import CoordinationUnavailableError, JournalOwnershipError
from ._journal import JournalEntry

__all__ = ["RedisJournal"]

log = logging.getLogger("runninghub_async")

T = TypeVar("T")


# Every script that makes this writer an item's owner puts its liveness lease
# first, so no item is owned by a writer without one (after Redis restarted
# empty, say).  KEYS[k]: the alive key; ARGV[a]: the token; ARGV[a + 1]: ms.
def _alive(k: int, a: int) -> str:
    return f"redis.call('SET', KEYS[{k}], ARGV[{a}], 'PX', ARGV[{a + 1}])\n"


_CLAIM = _alive(2, 2) + lua.CLAIM  # which uses KEYS[1], ARGV[1]
_INTENT = _alive(3, 7) + lua.INTENT  # which uses KEYS[1-2], ARGV[1-6]

# Take an item over only if no other live writer owns it (or it has ended).
# KEYS: 1 entry, 2 the alive key of the owner seen, 3 this writer's alive key.
# ARGV: 1 this writer, 2 the owner seen (read just before), 3 token, 4 lease ms.
# Returns {1, epoch} when taken, {0, epoch} when refused, {-1, 0} when the owner
# changed since it was read (read it again).
_CLAIM_ABANDONED = """
local who = redis.call('HGET', KEYS[1], 'owner') or ''
if who ~= ARGV[2] then return {-1, 0} end
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if redis.call('HEXISTS', KEYS[1], 'status') == 1 then return {0, epoch} end
if who ~= '' and who ~= ARGV[1] and redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, epoch}
end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return {1, epoch}
"""

# Remove this writer's lease, unless another process of the same name holds it now.
_LEAVE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisJournal:
    """The `Journal` in Redis: one hash per caller key, and a set of the keys not ended.

    Several workers may share one journal (one *namespace*); each item is owned
    by one writer at a time.  `claim` takes an item over and bumps its ownership
    epoch; a writer whose epoch is no longer current can no longer record an
    intent for it: `intent` raises `JournalOwnershipError` (checked and written
    atomically in one Lua script), so a worker thought dead that wakes up does
    not POST what another worker has taken over.  A writer that never claimed
    a key owns it by recording the first intent.

    A writer is *live* while its journal is entered: a lease in Redis, renewed
    every ``lease / 3`` s and removed on exit.  `outstanding` leaves out, and
    `claim_abandoned` (``recover()``) refuses, another live writer's items: what
    is taken over is what a writer that closed, or died over *lease* s ago, left.
    `claim` takes an item whatever its owner's state, for a caller that knows the
    owner is gone (as the distributed CLI's stream does).

    ``accepted`` always keeps a task id when none is known (a paid task must not
    be forgotten), and otherwise only for the current owner; ``ended`` is written
    only by the current owner (a stale writer's is dropped with a warning).

    Failure semantics:

    * **Redis restarts empty** (no persistence): the journal is gone, and with it
      the record of every paid task it was following; ``recover()`` finds
      nothing.  Run Redis with persistence: AOF (``appendonly yes``) with
      ``appendfsync everysec`` loses at most about a second of records on a
      crash of Redis, ``appendfsync always`` none.
    * **Redis unreachable**: each call retries for *unavailable_timeout*
      seconds, then raises `CoordinationUnavailableError`; an ``intent`` that
      raises means the client does not POST.

    Args:
        client: a ``redis.asyncio.Redis`` (``decode_responses`` off).
        namespace: the journal's name (one batch, one application); keys live
            under ``rhj:{<namespace>}:``.
        owner: this writer's name.  The default (host, pid and a random suffix)
            makes a restarted process a new owner, that must `claim` each item it
            resumes and finds its dead predecessor's live until their lease
            lapses; a stable name (one per worker, one process at a time) lets a
            restarted worker carry on with its own items at once.
        unavailable_timeout: how long each call retries an unreachable Redis.
        lease: seconds a writer that stopped renewing (killed, cut off from
            Redis) still counts as live.  The default is ``RedisLimiter``'s slot
            lease: a dead worker's tasks become claimable as its slots come back
            (earlier, each task would count twice against the key), and a live
            one must miss two renewals (a stalled loop, a Redis failover) before
            its items can be taken (fenced by the epoch even then).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        namespace: str,
        owner: str | None = None,
        unavailable_timeout: float = 10.0,
        lease: float = 15.0,
        close_client: bool = False,
    ) -> None:
        if not lease > 0:
            raise ValueError(f"lease must be > 0, got {lease!r}")
        self._redis = client
        self._close_client = close_client
        self.namespace = namespace
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.unavailable_timeout = unavailable_timeout
        self._prefix = f"rhj:{{{namespace}}}:"
        self._outstanding = self._prefix + "outstanding"
        self._epochs: dict[str, int] = {}
        self.lease = lease
        self._lease_ms = max(1, round(lease * 1000))
        self._alive_key = self._alive(self.owner)
        self._token = uuid.uuid4().hex  # tells this process's lease from a namesake's
        self._beat: asyncio.Task[None] | None = None
        self._stop = anyio.CancelScope()
        self._claim = client.register_script(_CLAIM)
        self._claim_abandoned = client.register_script(_CLAIM_ABANDONED)
        self._leave = client.register_script(_LEAVE)
        self._intent = client.register_script(_INTENT)
        self._accepted = client.register_script(lua.ACCEPTED)
        self._ended = client.register_script(lua.ENDED)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str,
        owner: str | None = None,
        unavailable_timeout: float = 10.0,
        socket_timeout: float = 2.0,
        lease: float = 15.0,
    ) -> Self:
        """A journal on the Redis (or Valkey) at *url*; see the class for the arguments."""
        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        return cls(
            client,
            namespace=namespace,
            owner=owner,
            unavailable_timeout=unavailable_timeout,
            lease=lease,
            close_client=True,
        )

    def __repr__(self) -> str:
        return f"<RedisJournal {self.namespace!r} owner={self.owner!r}>"

    async def __aenter__(self) -> Self:
        if self._beat is not None:
            raise RuntimeError("the journal is already open")
        # An owned task (stopped and awaited on exit), not a task group: the CLI
        # enters the journal inside the client's group and leaves it after that
        # group closed.  Stopped by a scope, not Task.cancel(): on 3.11 a cancel
        # landing as a redis call's inner wait ends is lost (asyncio.wait_for).
        # No I/O here: every write that makes this writer an owner puts the lease.
        self._stop = anyio.CancelScope()
        beat = _heartbeat(self._redis, self._alive_key, self._token, self.lease, self._stop)
        self._beat = asyncio.create_task(beat, name=f"journal lease of {self.owner}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        beat, self._beat = self._beat, None
        with anyio.CancelScope(shield=True):
            if beat is not None:
                self._stop.cancel()
                await asyncio.wait([beat])
                if not beat.cancelled() and beat.exception() is not None:
                    log.warning("the journal's heartbeat had stopped: %r", beat.exception())
                # Hand this writer's items over at once rather than after the lease.
                with anyio.move_on_after(2.0):
                    try:
                        await self._leave(keys=[self._alive_key], args=[self._token])
                    except redis.exceptions.RedisError as error:
                        log.warning("could not remove the journal's lease in Redis: %s", error)
            if self._close_client:
                await self._redis.aclose()

    def _entry_key(self, key: str) -> str:
        return self._prefix + "e:" + key

    def _alive(self, owner: str) -> str:
        return self._prefix + "alive:" + owner

    def _require_open(self) -> None:
        # Owning items without a lease would make them anyone's to take.
        if self._beat is None:
            raise RuntimeError("the journal is not open; use `async with`")

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run *call*, retrying while Redis is unreachable, up to the bound."""
        deadline = anyio.current_time() + self.unavailable_timeout
        delay = 0.05
        while True:
            try:
                return await call()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
                if anyio.current_time() + delay > deadline:
                    raise CoordinationUnavailableError(
                        f"the journal's Redis is unreachable: {error}"
                    ) from error
            await anyio.sleep(delay)
            delay = min(0.5, delay * 2)

    async def claim(self, key: str) -> int:
        """Take *key* over from whoever owned it, live or not; returns the new epoch.

        For a caller that knows the owner is gone; see `claim_abandoned`.

        Raises:
            CoordinationUnavailableError: Redis stayed unreachable.
            RuntimeError: the journal is not open.
        """
        self._require_open()
        keys = [self._entry_key(key), self._alive_key]
        args: list[Any] = [self.owner, self._token, self._lease_ms]
        epoch = int(await self._call(lambda: self._claim(keys=keys, args=args)))
        self._epochs[key] = epoch
        return epoch

    async def claim_abandoned(self, key: str) -> int | None:
        """Take *key* over unless another live writer owns it or it has ended.

        Atomic: of two workers recovering at once, one takes it.  Returns the
        new ownership epoch, or None (refused).

        Raises:
            CoordinationUnavailableError: Redis stayed unreachable.
            RuntimeError: the journal is not open.
        """
        self._require_open()
        entry = self._entry_key(key)
        for _ in range(8):  # each retry means another writer took it meanwhile
            seen = await self._call(functools.partial(self._redis.hget, entry, "owner"))
            owner = "" if seen is None else _text(seen)
            keys = [entry, self._alive(owner), self._alive_key]
            args: list[Any] = [self.owner, owner, self._token, self._lease_ms]
            call = functools.partial(self._claim_abandoned, keys=keys, args=args)
            taken, epoch = await self._call(call)
            if int(taken) == 1:
                self._epochs[key] = int(epoch)
                return int(epoch)
            if int(taken) == 0:
                return None
        return None  # contended: whoever keeps taking it is live

    async def intent(self, key: str, endpoint: str, params_digest: str) -> None:
        """Record that *key* is about to be POSTed, if this writer still owns it.

        Raises:
            JournalOwnershipError: another writer claimed *key*: do not POST.
            CoordinationUnavailableError: Redis stayed unreachable: do not POST.
            RuntimeError: the journal is not open.
        """
        self._require_open()
        args: list[Any] = [self.owner, self._epochs.get(key, 0), endpoint, params_digest]
        args += [time.time(), key, self._token, self._lease_ms]
        keys = [self._entry_key(key), self._outstanding, self._alive_key]
        ok, epoch, owner = await self._call(lambda: self._intent(keys=keys, args=args))
        if not ok:
            raise JournalOwnershipError(key, _text(owner), int(epoch))
        self._epochs[key] = int(epoch)

    async def accepted(self, key: str, task_id: str) -> None:
        """Record *key*'s task id (see the class for a writer that lost the item).

        Raises:
            CoordinationUnavailableError: Redis stayed unreachable.
        """
        args: list[Any] = [self._epochs.get(key, 0), task_id, time.time(), self.owner]
        written = await self._call(lambda: self._accepted(keys=[self._entry_key(key)], args=args))
        if not written:
            log.warning(
                "journal key %r is owned by another writer; task %s not recorded", key, task_id
            )

    async def ended(self, key: str, status: str) -> None:
        """Record *key*'s end (dropped with a warning if another writer owns it now).

        Raises:
            CoordinationUnavailableError: Redis stayed unreachable.
        """
        args: list[Any] = [self._epochs.get(key, 0), status, time.time(), self.owner, key]
        keys = [self._entry_key(key), self._outstanding]
        if not await self._call(lambda: self._ended(keys=keys, args=args)):
            log.warning("journal key %r is owned by another writer; its end is not recorded", key)

    async def get(self, key: str) -> JournalEntry | None:
        """What is known of *key*, or None.

        Raises:
            CoordinationUnavailableError: Redis stayed unreachable.
        """
        fields = await self._call(lambda: self._redis.hgetall(self._entry_key(key)))
        return _entry(key, fields)

    async def outstanding(self, *, include_live: bool = False) -> list[JournalEntry]:
        """Entries with no end yet that no other live writer follows, oldest first.

        This writer's own entries are included (a restarted worker with a stable
        name takes its own back); *include_live* includes every entry.

        Raises:
            CoordinationUnavailableError: Redis stayed unreachable.
        """

        async def read() -> list[tuple[str, Any]]:
            keys = sorted(_text(k) for k in await self._redis.smembers(self._outstanding))
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(self._entry_key(key))
                rows = await pipe.execute()
            found = list(zip(keys, rows, strict=True))
            owners = sorted({_text(f.get(b"owner", b"")) for _, f in found} - {"", self.owner})
            if include_live or not owners:
                return found
            async with self._redis.pipeline(transaction=False) as pipe:
                for owner in owners:
                    pipe.exists(self._alive(owner))
                live = {o for o, n in zip(owners, await pipe.execute(), strict=True) if n}
            return [(k, f) for k, f in found if _text(f.get(b"owner", b"")) not in live]

        entries = [_entry(key, fields) for key, fields in await self._call(read)]
        found = [e for e in entries if e is not None and e.status is None]
        return sorted(found, key=lambda e: e.updated_at)


async def _heartbeat(
    client: redis.asyncio.Redis, key: str, token: str, lease: float, stop: anyio.CancelScope
) -> None:
    """Renew a writer's lease every ``lease / 3`` s (sooner after a failure), until *stop*."""
    failing = False
    with stop:
        while True:
            try:
                await client.set(key, token, px=max(1, round(lease * 1000)))
            except redis.exceptions.RedisError as error:
                if not failing:
                    log.warning(
                        "could not renew the journal's lease in Redis (%s); other workers "
                        "may take this one's items over if that lasts %s s",
                        error,
                        lease,
                    )
                failing = True
                await anyio.sleep(lease / 10)
                continue
            if failing:
                log.warning("the journal's lease is renewed again")
                failing = False
            await anyio.sleep(lease / 3)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(key: str, fields: Mapping[Any, Any]) -> JournalEntry | None:
    if b"endpoint" not in fields and b"task_id" not in fields:
        return None  # claimed, never submitted

    def text(name: bytes) -> str | None:
        value = fields.get(name)
        return None if value is None else _text(value)

    return JournalEntry(
        key=key,
        endpoint=text(b"endpoint") or "",
        params_digest=text(b"digest") or "",
        task_id=text(b"task_id"),
        status=text(b"status"),
        updated_at=float(fields.get(b"at", b"0")),
    )
