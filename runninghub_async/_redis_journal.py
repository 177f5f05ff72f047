"""`RedisJournal`: the submit journal in Redis, shared by workers that take over items."""

from __future__ import annotations

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


class RedisJournal:
    """The `Journal` in Redis: one hash per caller key, and a set of the keys not ended.

    Several workers may share one journal (one *namespace*); each item is owned
    by one writer at a time.  `claim` takes an item over and bumps its ownership
    epoch; a writer whose epoch is no longer current can no longer record an
    intent for it: `intent` raises `JournalOwnershipError` (checked and written
    atomically in one Lua script), so a worker thought dead that wakes up does
    not POST what another worker has taken over.  A writer that never claimed
    a key owns it by recording the first intent.

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
            makes a restarted process a new owner that must `claim` each item it
            resumes before recording its end; a stable name (one per worker)
            lets a restarted worker carry on with its own items.
        unavailable_timeout: how long each call retries an unreachable Redis.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        namespace: str,
        owner: str | None = None,
        unavailable_timeout: float = 10.0,
        close_client: bool = False,
    ) -> None:
        self._redis = client
        self._close_client = close_client
        self.namespace = namespace
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.unavailable_timeout = unavailable_timeout
        self._prefix = f"rhj:{{{namespace}}}:"
        self._outstanding = self._prefix + "outstanding"
        self._epochs: dict[str, int] = {}
        self._claim = client.register_script(lua.CLAIM)
        self._intent = client.register_script(lua.INTENT)
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
    ) -> RedisJournal:
        """A journal on the Redis (or Valkey) at *url*; see the class for the arguments."""
        client = redis.asyncio.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        return cls(
            client,
            namespace=namespace,
            owner=owner,
            unavailable_timeout=unavailable_timeout,
            close_client=True,
        )

    def __repr__(self) -> str:
        return f"<RedisJournal {self.namespace!r} owner={self.owner!r}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._close_client:
            with anyio.CancelScope(shield=True):
                await self._redis.aclose()

    def _entry_key(self, key: str) -> str:
        return self._prefix + "e:" + key

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
        """Take *key* over from whoever owned it; returns the new ownership epoch.

        Raises:
            CoordinationUnavailableError: Redis stayed unreachable.
        """
        epoch = int(
            await self._call(lambda: self._claim(keys=[self._entry_key(key)], args=[self.owner]))
        )
        self._epochs[key] = epoch
        return epoch

    async def intent(self, key: str, endpoint: str, params_digest: str) -> None:
        """Record that *key* is about to be POSTed, if this writer still owns it.

        Raises:
            JournalOwnershipError: another writer claimed *key*: do not POST.
            CoordinationUnavailableError: Redis stayed unreachable: do not POST.
        """
        args: list[Any] = [
            self.owner,
            self._epochs.get(key, 0),
            endpoint,
            params_digest,
            time.time(),
            key,
        ]
        keys = [self._entry_key(key), self._outstanding]
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

    async def outstanding(self) -> list[JournalEntry]:
        """Entries with no end yet, oldest first.

        Raises:
            CoordinationUnavailableError: Redis stayed unreachable.
        """

        async def read() -> list[tuple[str, Any]]:
            keys = sorted(_text(k) for k in await self._redis.smembers(self._outstanding))
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(self._entry_key(key))
                rows = await pipe.execute()
            return list(zip(keys, rows, strict=True))

        entries = [_entry(key, fields) for key, fields in await self._call(read)]
        found = [e for e in entries if e is not None and e.status is None]
        return sorted(found, key=lambda e: e.updated_at)


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
