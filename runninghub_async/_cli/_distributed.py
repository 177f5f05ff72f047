"""``batch FILE -o DIR --redis URL``: one batch shared by workers on several machines.

Start the same command with the same FILE (and model options) on each machine.
The workers share, through the Redis at URL:

* the key's slots and request rate (``RedisLimiter``): together they never run
  more jobs than the key allows nor send more requests than ``--rps``;
* the submit journal (``RedisJournal``, namespace ``batch:<name>``, where the
  name is a hash of FILE's content and the model options): a worker claims each
  item before it acts on it, so a worker thought dead cannot submit it again;
* the lines, in a Redis Stream read by a consumer group (see `_stream`): each
  line goes to one worker; a worker killed mid-run leaves its lines pending, and
  after ``--claim-idle`` seconds another worker takes them over and asks the
  journal: a task already submitted is re-attached (nothing is paid twice), a
  submit whose outcome is unknown is reported, never resent.

Every worker shows the shared progress and runs until every line is settled.
Files go to the ``-o DIR`` of the worker that finished the line.  At the end
each worker writes ``manifest.jsonl`` (every line's record, with the ``worker``
that settled it, so you know which machine's DIR has its files) and
``failures.jsonl``, both collected in Redis, into its own DIR.  ``--max-cost``
is per worker.

Redis failures: every call to Redis (slots, journal, stream) is retried while
Redis is unreachable, for up to two leases (30 s by default); a blip or a
restart that keeps the data costs nothing.  After that, or when Redis lost the
batch (restarted empty), the worker stops with one error line: a worker cut off
for two leases has lost its slots and its lines to the others anyway.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Mapping
from typing import TYPE_CHECKING

import anyio
import attrs

from ._backend import Target, open_session
from ._batch import (
    FAILURES_NAME,
    MANIFEST_NAME,
    BatchRequest,
    EmptyInputError,
    write_records,
)
from ._engine import Engine
from ._inputs import Format, Item, _numbered_lines, count_items
from ._journal import LateJournal
from ._ledger import Failure
from ._plan import list_outputs
from ._progress import Tracker, make_display, rich_console, show_while
from ._stop import Interrupted, Stop
from ._summary import print_summary, summarize

if TYPE_CHECKING:
    from ._stream import BatchStream, Progress

__all__ = ["RedisOptions", "batch_name", "run_distributed"]

_CHUNK = 64


@attrs.frozen(kw_only=True)
class RedisOptions:
    """How ``--redis`` workers coordinate.

    Attributes:
        url: the Redis (or Valkey) URL.
        worker: this worker's name, unique among the workers (default: host:pid).
        claim_idle: seconds after which a silent worker's lines are taken over.
        lease: seconds a dead worker's slots stay held.  Keep *claim_idle* under
            it: a dead worker's tasks then wait, first in line, for its slots, and
            no new submit gets one while they still run (which RunningHub would
            refuse with a 421).
        unavailable_timeout: seconds Redis may stay unreachable before the
            worker stops (None: two leases, the library's default ratio).
    """

    url: str
    worker: str | None = None
    claim_idle: float = 10.0
    lease: float = 15.0
    unavailable_timeout: float | None = None

    @property
    def patience(self) -> float:
        """How long every Redis call of the worker retries an unreachable Redis."""
        if self.unavailable_timeout is not None:
            return self.unavailable_timeout
        return 2 * self.lease


def _hash_file(path: str, options: bytes) -> str:
    digest = hashlib.sha256(options)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:20]


async def batch_name(request: BatchRequest) -> str:
    """The batch's name: a hash of FILE's content and of the options that shape requests."""
    builder = request.builder
    options = f"{builder.model}\0{builder.aspect_ratio}\0{builder.resolution}".encode()
    return await anyio.to_thread.run_sync(_hash_file, request.file, options)


def _lines(path: str) -> AsyncIterator[tuple[int, str]]:
    async def read() -> AsyncIterator[tuple[int, str]]:
        lines = _numbered_lines(path)
        try:
            while True:
                chunk = await anyio.to_thread.run_sync(_take, lines)
                if not chunk:
                    return
                for pair in chunk:
                    yield pair
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lines.close)

    return read()


def _take(lines: Generator[tuple[int, str], None, None]) -> list[tuple[int, str]]:
    return list(itertools.islice(lines, _CHUNK))


def _shared_line(progress: Progress, tracker: Tracker) -> None:
    if progress.total is not None:
        tracker.total = progress.total
    tracker.done, tracker.failed, tracker.skipped = progress.done, progress.failed, progress.skipped
    tracker.running = progress.pending


async def run_distributed(
    target: Target, request: BatchRequest, shared: RedisOptions, stop: Stop
) -> int:
    """Run this worker's share of the batch; 0 when every line is done, 1 when any failed.

    Raises:
        Interrupted: the user stopped this worker (its lines go to the others).
        CoordinationUnavailableError: Redis stayed unreachable for `RedisOptions.patience`.
        BatchLostError: Redis lost the batch's shared state (it restarted empty).
        OSError, ValueError: the file cannot be read, the output cannot be written.
        RunningHubError: the client could not open, or the key was refused.
    """
    try:
        import redis.asyncio

        from ..redis import RedisJournal, RedisLimiter
        from ._stream import BatchStream
    except ImportError as exc:
        raise ValueError(
            f"--redis needs the redis extra: pip install 'runninghub-async[redis]' ({exc})"
        ) from None

    if target.fake or target.api_key is None:
        raise ValueError("--redis shares a RunningHub key between machines; it needs a real key")
    total, fmt = await count_items(request.file)
    if total == 0:
        raise EmptyInputError(f"{request.file} holds no prompts (every line is blank)")
    name = await batch_name(request)
    worker = shared.worker or f"{socket.gethostname()}:{os.getpid()}"
    options = request.options
    fixed = options.max_in_flight if isinstance(options.max_in_flight, int) else 1
    limiter = RedisLimiter.from_url(
        shared.url,
        api_key=target.api_key,
        max_in_flight=fixed,  # "auto": set from the key's limit when the client opens
        requests_per_second=options.requests_per_second or 10.0,
        lease=shared.lease,
        unavailable_timeout=shared.patience,
    )
    journal = LateJournal(
        RedisJournal.from_url(
            shared.url,
            namespace=f"batch:{name}",
            owner=worker,
            unavailable_timeout=shared.patience,
        )
    )
    out_dir = anyio.Path(request.output)
    console = rich_console()
    connection = redis.asyncio.Redis.from_url(
        shared.url, socket_timeout=5.0, socket_connect_timeout=5.0
    )
    try:
        async with open_session(target, options, journal=journal, limiter=limiter) as session:
            client = session.client
            if options.max_in_flight != "auto":
                await client.queue_status()  # a bad key stops here, before anything is shared
            await journal.open()
            stream = BatchStream(
                connection,
                batch=name,
                worker=worker,
                claim_idle=shared.claim_idle,
                unavailable_timeout=shared.patience,
            )
            await stream.setup()
            await stream.load(lambda: _lines(request.file))
            await out_dir.mkdir(parents=True, exist_ok=True)
            on_disk = await anyio.to_thread.run_sync(list_outputs, os.fspath(out_dir))
            window = client.statistics().limiter.max_in_flight
            print(
                f"batch {name}: {total} items from {request.file}, shared through Redis; "
                f"this is worker {worker} ({window} at a time for the key); "
                f"files go to {request.output}",
                flush=True,
            )
            local = Tracker(total)
            tracker = Tracker(total)
            display = make_display(tracker, label="batch", console=console)

            async def settled(
                item: Item, record: Mapping[str, object], failure: Failure | None, skipped: bool
            ) -> None:
                counter = "skipped" if skipped else str(record["status"])
                row = {**record, "worker": worker}
                fail = None if failure is None else failure.as_record()
                with anyio.CancelScope(shield=True):
                    await stream.settle(item.index, counter, row, fail)

            engine = Engine(
                client,
                journal,
                local,
                request.output,
                window=window,
                stop=stop,
                note=display.note,
                on_disk=on_disk,
                resubmit_unknown=request.resubmit_unknown,
                retry_failed=request.retry_failed,
                budget=None,
                slots=limiter,
                settled=settled,
            )
            await show_while(display, lambda: _work(engine, stream, request, fmt, tracker))
            if stop.requested.is_set():
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    await stream.hand_back()
            progress = await stream.progress()
            manifest, failures = await stream.records()
            wall = local.elapsed()
            stats = client.statistics()
    finally:
        with anyio.CancelScope(shield=True):
            await connection.aclose()
    await write_records(out_dir, MANIFEST_NAME, manifest, keep_empty=True)
    failures_path = await write_records(out_dir, FAILURES_NAME, failures)
    print_summary(
        summarize(engine=engine, tracker=local, stats=stats, wall=wall),
        title=f"this worker ({worker})",
        console=console,
    )
    print(
        f"whole batch: {progress.done} done, {progress.failed} failed, "
        f"{progress.skipped} skipped as already done, of {progress.total}",
        flush=True,
    )
    if failures:
        print(f"{len(failures)} items failed; each is listed with its error in {failures_path}")
    if stop.requested.is_set():
        raise Interrupted(
            "interrupted; the other workers take over this worker's lines "
            "(or re-run the same command to carry on)",
            status=stop.exit_status,
        )
    return 1 if failures else 0


async def _work(
    engine: Engine, stream: BatchStream, request: BatchRequest, fmt: Format, tracker: Tracker
) -> None:
    """Run the lines this worker takes, showing the shared progress meanwhile."""

    async def items() -> AsyncGenerator[Item, None]:
        async for index, line, text in stream.entries(lambda: _lines(request.file)):
            yield request.builder.build(fmt, index, line, text)

    async def follow() -> None:
        # Also the watchdog: a Redis away for too long, or one that lost the
        # batch, raises here within half a second, and ends the run.
        while True:
            _shared_line(await stream.progress(), tracker)
            await anyio.sleep(0.5)

    async with anyio.create_task_group() as tg:
        await tg.start(stream.keep_alive)
        tg.start_soon(follow)
        await engine.run(items())
        _shared_line(await stream.progress(), tracker)
        tg.cancel_scope.cancel()
