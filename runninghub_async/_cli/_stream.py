"""One batch's lines in a Redis Stream, shared by workers through a consumer group.

Keys, all under ``rhb:{<batch>}:`` (one hash tag: a Redis Cluster keeps them on
one node): ``stream`` (one entry per line, id ``0-<index+1>``, fields ``index``,
``line``, ``text``), ``loader`` (the loading worker's flag, with a lease),
``total`` (set once every line is in the stream), ``progress`` (a hash of
counts: done, failed, not_run, skipped, acked), ``manifest`` and ``failures``
(hashes of JSON records by index), ``run`` (a token set by the first worker).

* **Loading** is idempotent: the first worker to set ``loader`` (SET NX with a
  lease) adds the lines with explicit ids, continuing after the last id present,
  so a loader killed half-way is continued by the next worker once its flag lapses.
* **Reading**: each worker takes entries with XREADGROUP (one at a time, as its
  window frees up) and first takes over entries other workers left idle for
  longer than *claim_idle* seconds (XAUTOCLAIM): a killed worker's items.
* **Keeping**: a live worker touches the entries it holds every ``claim_idle / 3``
  seconds (XCLAIM by itself, only while it is still their owner), so a long job
  is never taken over from a live worker.
* **Settling**: one Lua script XACKs an entry, counts it and stores its manifest
  record, only while this worker owns the entry, so each line counts once.
* **The end**: the batch is over for everyone when ``acked`` reaches ``total``.

Failure semantics (every Redis call goes through `BatchStream._call`):

* **Redis unreachable** (a dropped connection, a restart, a pause): each call
  is retried with backoff; once Redis has been unreachable for
  *unavailable_timeout* s (counted from the first failure of the outage,
  whichever call saw it) the call raises `CoordinationUnavailableError`.  Every
  call is safe to repeat: a reply lost after Redis acted leaves at worst an
  entry in this worker's pending list, which is taken over after *claim_idle*.
* **Redis lost the batch** (restarted empty, or flushed): the consumer group is
  gone, or a ``run`` token other than the one this worker set up is found.
  The journal went with it, so carrying on (or re-creating the group) would
  submit again lines already paid for: `BatchLostError` says so instead.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.abc
import attrs
import redis.asyncio
import redis.exceptions

from .. import _redis_lua as lua
from .._errors import CoordinationUnavailableError, RunningHubError
from .._redis_slots import BACKOFF

__all__ = ["GROUP", "BatchLostError", "BatchStream", "Progress"]

log = logging.getLogger("runninghub_async")

T = TypeVar("T")

GROUP = "workers"

_CHUNK = 500  # lines added per round trip while loading

# A dropped connection, a timeout, a Redis still loading its data: worth a retry.
_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

Lines = Callable[[], AsyncIterator[tuple[int, str]]]
"""Reads the batch file afresh: ``(line number, text)`` of every non-blank line."""


class BatchLostError(RunningHubError):
    """Redis no longer holds the batch (it restarted empty, or was flushed): the worker stops."""


@attrs.frozen
class Progress:
    """The shared counts of a batch.

    Attributes:
        total: lines in the batch (None while the first worker is still loading).
        done: lines done in this batch, by any worker.
        failed: lines that failed (not_run ones included).
        skipped: lines an earlier run had finished.
        pending: lines handed to a worker and not settled yet.
    """

    total: int | None
    done: int
    failed: int
    skipped: int
    pending: int

    @property
    def settled(self) -> int:
        """Lines that need nothing more."""
        return self.done + self.failed + self.skipped

    @property
    def over(self) -> bool:
        """Every line is settled."""
        return self.total is not None and self.settled >= self.total


def entry_id(index: int) -> str:
    """The stream id of line *index* (explicit, so loading twice adds nothing)."""
    return f"0-{index + 1}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class BatchStream:
    """One worker's view of a batch shared through a Redis Stream (see the module).

    Args:
        client: a ``redis.asyncio.Redis`` (``decode_responses`` off).
        batch: the batch's name (a hash of its file and options).
        worker: this worker's consumer name, unique among the workers.
        claim_idle: seconds after which another worker's silent entries are taken over.
        unavailable_timeout: how long calls retry an unreachable Redis.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        batch: str,
        worker: str,
        claim_idle: float,
        unavailable_timeout: float = 30.0,
    ) -> None:
        if not claim_idle > 0:
            raise ValueError(f"claim_idle must be > 0, got {claim_idle!r}")
        self._redis = client
        self.batch = batch
        self.worker = worker
        self.claim_idle = claim_idle
        self.unavailable_timeout = unavailable_timeout
        prefix = f"rhb:{{{batch}}}:"
        self.stream = prefix + "stream"
        self._run = prefix + "run"
        self._loader = prefix + "loader"
        self._total = prefix + "total"
        self._progress = prefix + "progress"
        self._manifest = prefix + "manifest"
        self._failures = prefix + "failures"
        self._touch = client.register_script(lua.STREAM_TOUCH)
        self._hand_back = client.register_script(lua.STREAM_HAND_BACK)
        self._settle = client.register_script(lua.STREAM_SETTLE)
        self._owned: set[str] = set()
        # Blocking reads stay well under the client's socket timeout.
        self._block_ms = max(10, min(500, int(claim_idle * 250)))
        self._token: bytes | str | None = None  # the `run` this worker set up
        self._down_since: float | None = None  # since when Redis does not answer
        self._told = False  # the user was told so

    def __repr__(self) -> str:
        return f"<BatchStream {self.batch!r} worker={self.worker!r} holding={len(self._owned)}>"

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run *call*, retrying with backoff while Redis is unreachable, up to the bound.

        Raises:
            CoordinationUnavailableError: Redis has been unreachable for
                *unavailable_timeout* s.
            BatchLostError: Redis answers, but the consumer group is gone.
        """
        backoff = BACKOFF[0]
        while True:
            try:
                result = await call()
            except _TRANSIENT as error:
                now = anyio.current_time()
                if self._down_since is None:
                    # Silent once: a pooled connection the server dropped fails
                    # once, and the retry on a new one just works.
                    self._down_since = now
                elif not self._told:
                    self._told = True
                    log.warning(
                        "the batch's Redis is unreachable (%s); retrying for up to %g s",
                        error,
                        self.unavailable_timeout,
                    )
                if now - self._down_since >= self.unavailable_timeout:
                    raise CoordinationUnavailableError(
                        f"the batch's Redis has been unreachable for "
                        f"{self.unavailable_timeout:g} s ({error}); this worker stops "
                        "(run the same command again to carry on)"
                    ) from error
            except redis.exceptions.ResponseError as error:
                if "NOGROUP" in str(error):
                    raise self._lost() from error
                raise
            else:
                if self._told:
                    log.warning("the batch's Redis answers again")
                self._down_since, self._told = None, False
                return result
            await anyio.sleep(backoff)
            backoff = min(BACKOFF[1], backoff * 2)

    def _lost(self) -> BatchLostError:
        return BatchLostError(
            f"Redis no longer holds batch {self.batch} (restarted empty, or flushed?): its "
            "shared progress and journal are gone, so this worker stops rather than pay again "
            "for lines already done; the files it saved are in its output directory (run Redis "
            "with appendonly yes so that a restart keeps the batch)"
        )

    async def setup(self) -> None:
        """Create the stream and its consumer group (if another worker has not)."""

        async def create() -> None:
            try:
                await self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
            except redis.exceptions.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

        await self._call(create)
        # A token of this batch's state: a batch set up afresh by a worker that
        # came after Redis lost it has another, and `progress` tells them apart.
        token = uuid.uuid4().hex
        await self._call(lambda: self._redis.set(self._run, token, nx=True))
        self._token = await self._call(lambda: self._redis.get(self._run))

    async def load(self, lines: Lines) -> bool:
        """Add the batch's ``(line number, text)`` lines, unless loaded or being loaded.

        Returns True when this worker loaded (or finished loading) them.
        """
        if await self._call(lambda: self._redis.exists(self._total)):
            return False
        lease_ms = int(self.claim_idle * 1000)
        flag = partial(self._redis.set, self._loader, self.worker, nx=True, px=lease_ms)
        if not await self._call(flag):
            return False
        last: Any = await self._call(lambda: self._redis.xrevrange(self.stream, count=1))
        start = int(_text(last[0][0]).split("-")[1]) if last else 0
        index = 0
        rows: list[dict[str, int | str]] = []
        async for line, text in lines():
            if index >= start:
                rows.append({"index": index, "line": line, "text": text})
            if len(rows) >= _CHUNK:
                await self._add(rows, lease_ms, None)
                rows = []
            index += 1
        await self._add(rows, lease_ms, index)
        return True

    async def _add(
        self, rows: list[dict[str, int | str]], lease_ms: int, total: int | None
    ) -> None:
        """Add *rows* to the stream in one round trip (and the *total*, when given)."""

        async def send() -> None:
            # A fresh pipeline each attempt: a failed one has forgotten its commands.
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(self.stream, row, id=entry_id(int(row["index"])))  # type: ignore[arg-type]
                pipe.pexpire(self._loader, lease_ms)
                if total is not None:
                    pipe.set(self._total, total)
                # An id already there (a loader raced us, or a retried round trip
                # had landed) is refused: nothing twice.
                await pipe.execute(raise_on_error=False)

        await self._call(send)

    async def entries(
        self, lines: Lines | None = None
    ) -> AsyncGenerator[tuple[int, int, str], None]:
        """``(index, line number, text)`` of each entry this worker takes, until the batch ends.

        Entries idle for *claim_idle* s (a dead worker's) are taken first.  When
        nothing is left to take but the batch is not over, it keeps looking: a
        worker still busy may die, or the loader may need to be continued (with
        *lines*, when given).
        """
        claim_ms = int(self.claim_idle * 1000)
        while True:
            got = False
            reply: Any = await self._call(
                lambda: self._redis.xautoclaim(
                    self.stream, GROUP, self.worker, claim_ms, start_id="0-0", count=1
                )
            )
            _, claimed, *_ = reply
            for found in await self._take(claimed):
                got = True
                yield found
            answer: Any = await self._call(
                lambda: self._redis.xreadgroup(
                    GROUP, self.worker, {self.stream: ">"}, count=1, block=self._block_ms
                )
            )
            for _, delivered in answer or ():
                for found in await self._take(delivered):
                    got = True
                    yield found
            if got:
                continue
            progress = await self.progress()
            if progress.over:
                return
            if progress.total is None and lines is not None:
                await self.load(lines)  # the loader may have died: carry on after it

    async def _take(self, delivered: Any) -> list[tuple[int, int, str]]:
        found = []
        for raw_id, fields in delivered:
            eid = _text(raw_id)
            if eid in self._owned or not fields:  # already mine in progress; or deleted
                continue
            self._owned.add(eid)
            row = {_text(k): _text(v) for k, v in fields.items()}
            found.append((int(row["index"]), int(row["line"]), row["text"]))
        return found

    async def settle(
        self,
        index: int,
        counter: str,
        record: Mapping[str, object],
        failure: Mapping[str, object] | None,
    ) -> bool:
        """Acknowledge line *index*, count it under *counter* and keep its records.

        Returns False when the entry is no longer this worker's (another took it over).
        """
        eid = entry_id(index)
        self._owned.discard(eid)
        dump = json.dumps(dict(record), ensure_ascii=False, default=str)
        fail = "" if failure is None else json.dumps(dict(failure), ensure_ascii=False, default=str)
        keys = [self.stream, self._progress, self._manifest, self._failures]
        args: list[str | int] = [GROUP, self.worker, eid, counter, index, dump, fail]
        # A retry after the script ran (its reply lost) finds the entry acked: False.
        return bool(await self._call(lambda: self._settle(keys=keys, args=args)))

    async def keep_alive(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Touch the entries this worker holds every ``claim_idle / 3`` s, until cancelled."""
        task_status.started()
        while True:
            await anyio.sleep(self.claim_idle / 3)
            owned = sorted(self._owned)
            if owned:
                touch = partial(self._touch, keys=[self.stream], args=[GROUP, self.worker, *owned])
                lost = await self._call(touch)
                self._owned.difference_update(_text(x) for x in lost)

    async def hand_back(self) -> None:
        """Let other workers take the entries this one holds at once (it is stopping)."""
        owned = sorted(self._owned)
        if owned:
            args = [GROUP, self.worker, *owned]
            await self._call(partial(self._hand_back, keys=[self.stream], args=args))
            self._owned.clear()

    async def progress(self) -> Progress:
        """The shared counts.

        Raises:
            BatchLostError: Redis no longer holds the batch this worker set up.
        """

        async def read() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(self._run)
                pipe.get(self._total)
                pipe.hgetall(self._progress)
                pipe.xpending(self.stream, GROUP)
                answers: list[Any] = await pipe.execute()
                return answers

        run, total, counts, pending = await self._call(read)
        if self._token is not None and run != self._token:
            raise self._lost()
        count = {_text(k): int(v) for k, v in counts.items()}
        return Progress(
            total=None if total is None else int(total),
            done=count.get("done", 0),
            failed=count.get("failed", 0) + count.get("not_run", 0),
            skipped=count.get("skipped", 0),
            pending=int(pending["pending"]) if pending else 0,
        )

    async def records(self) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        """Every line's manifest record and every failure, by index."""
        manifest = await self._call(lambda: self._redis.hgetall(self._manifest))
        failures = await self._call(lambda: self._redis.hgetall(self._failures))

        def decode(rows: Mapping[Any, Any]) -> dict[int, dict[str, Any]]:
            return {int(_text(k)): json.loads(v) for k, v in rows.items()}

        return decode(manifest), decode(failures)
