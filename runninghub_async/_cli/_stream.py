"""One batch's lines in a Redis Stream, shared by workers through a consumer group.

Keys, all under ``rhb:{<batch>}:`` (one hash tag: a Redis Cluster keeps them on
one node): ``stream`` (one entry per line, id ``0-<index+1>``, fields ``index``,
``line``, ``text``), ``loader`` (the loading worker's flag, with a lease),
``total`` (set once every line is in the stream), ``progress`` (a hash of
counts: done, failed, not_run, skipped, acked), ``manifest`` and ``failures``
(hashes of JSON records by index).

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
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import attrs
import redis.asyncio
import redis.exceptions

__all__ = ["GROUP", "BatchStream", "Progress"]

GROUP = "workers"

_CHUNK = 500  # lines added per round trip while loading

Lines = Callable[[], AsyncIterator[tuple[int, str]]]
"""Reads the batch file afresh: ``(line number, text)`` of every non-blank line."""

# KEYS: 1 stream.  ARGV: 1 group, 2 worker, then entry ids.
# Resets the idle time of the entries this worker still owns; returns those it lost.
_TOUCH = """
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""

# KEYS: 1 stream.  ARGV: 1 group, 2 worker, then entry ids.
# Makes the entries this worker owns look idle for long, so others take them at once.
_HAND_BACK = """
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', 1000000000, 'JUSTID')
  end
end
return 0
"""

# KEYS: 1 stream, 2 progress, 3 manifest, 4 failures.
# ARGV: 1 group, 2 worker, 3 entry id, 4 counter, 5 index, 6 record, 7 failure ('' if none).
# Returns 1 when settled now, 0 when the entry is not this worker's (taken over, or settled).
_SETTLE = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
redis.call('HINCRBY', KEYS[2], 'acked', 1)
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[7])
else
  redis.call('HDEL', KEYS[4], ARGV[5])
end
return 1
"""


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
    """

    def __init__(
        self, client: redis.asyncio.Redis, *, batch: str, worker: str, claim_idle: float
    ) -> None:
        if not claim_idle > 0:
            raise ValueError(f"claim_idle must be > 0, got {claim_idle!r}")
        self._redis = client
        self.batch = batch
        self.worker = worker
        self.claim_idle = claim_idle
        prefix = f"rhb:{{{batch}}}:"
        self.stream = prefix + "stream"
        self._loader = prefix + "loader"
        self._total = prefix + "total"
        self._progress = prefix + "progress"
        self._manifest = prefix + "manifest"
        self._failures = prefix + "failures"
        self._touch = client.register_script(_TOUCH)
        self._hand_back = client.register_script(_HAND_BACK)
        self._settle = client.register_script(_SETTLE)
        self._owned: set[str] = set()
        # Blocking reads stay well under the client's socket timeout.
        self._block_ms = max(10, min(500, int(claim_idle * 250)))

    def __repr__(self) -> str:
        return f"<BatchStream {self.batch!r} worker={self.worker!r} holding={len(self._owned)}>"

    async def setup(self) -> None:
        """Create the stream and its consumer group (if another worker has not)."""
        try:
            await self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def load(self, lines: Lines) -> bool:
        """Add the batch's ``(line number, text)`` lines, unless loaded or being loaded.

        Returns True when this worker loaded (or finished loading) them.
        """
        if await self._redis.exists(self._total):
            return False
        lease_ms = int(self.claim_idle * 1000)
        if not await self._redis.set(self._loader, self.worker, nx=True, px=lease_ms):
            return False
        last: Any = await self._redis.xrevrange(self.stream, count=1)
        start = int(_text(last[0][0]).split("-")[1]) if last else 0
        index = 0
        async with self._redis.pipeline(transaction=False) as pipe:
            async for line, text in lines():
                if index >= start:
                    fields = {"index": index, "line": line, "text": text}
                    pipe.xadd(self.stream, fields, id=entry_id(index))  # type: ignore[arg-type]
                if len(pipe) >= _CHUNK:
                    pipe.pexpire(self._loader, lease_ms)
                    # An id already there (a loader raced us) is refused: nothing twice.
                    await pipe.execute(raise_on_error=False)
                index += 1
            pipe.set(self._total, index)
            await pipe.execute(raise_on_error=False)
        return True

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
            _, claimed, *_ = await self._redis.xautoclaim(
                self.stream, GROUP, self.worker, claim_ms, start_id="0-0", count=1
            )
            for found in await self._take(claimed):
                got = True
                yield found
            answer: Any = await self._redis.xreadgroup(
                GROUP, self.worker, {self.stream: ">"}, count=1, block=self._block_ms
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
        return bool(await self._settle(keys=keys, args=args))

    async def keep_alive(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Touch the entries this worker holds every ``claim_idle / 3`` s, until cancelled."""
        task_status.started()
        while True:
            await anyio.sleep(self.claim_idle / 3)
            owned = sorted(self._owned)
            if owned:
                lost = await self._touch(keys=[self.stream], args=[GROUP, self.worker, *owned])
                self._owned.difference_update(_text(x) for x in lost)

    async def hand_back(self) -> None:
        """Let other workers take the entries this one holds at once (it is stopping)."""
        owned = sorted(self._owned)
        if owned:
            await self._hand_back(keys=[self.stream], args=[GROUP, self.worker, *owned])
            self._owned.clear()

    async def progress(self) -> Progress:
        """The shared counts."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self._total)
            pipe.hgetall(self._progress)
            pipe.xpending(self.stream, GROUP)
            total, counts, pending = await pipe.execute()
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
        manifest = await self._redis.hgetall(self._manifest)
        failures = await self._redis.hgetall(self._failures)

        def decode(rows: Mapping[Any, Any]) -> dict[int, dict[str, Any]]:
            return {int(_text(k)): json.loads(v) for k, v in rows.items()}

        return decode(manifest), decode(failures)
