"""Tasks, their timers, live counts per key and the counters behind `FakeStats`.

Transitions are driven by timers on the event loop (``loop.call_at``), never
lazily by queries: each task becomes RUNNING and terminal at its own moment, its
``finished_at`` is the exact ``time.time()`` of that moment, and per-key counts
are exact at every instant.  A timer handle per outstanding task is all it costs,
so 10,000 outstanding tasks are cheap.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType

import anyio
import attrs

from ._bodies import failed_reason, message_for
from ._durations import DurationSpec, draw
from ._models import FakeStats, FakeTask
from ._outputs import extension_for

__all__ = ["Counters", "TaskBook", "TaskRecord", "TasksView"]

_TASK_ID_BASE = 2_000_000_000_000_000_000  # 19 digits, like real ids
_OUTPUT_COUNT_PARAMS = ("imageNum", "n")
_MAX_OUTPUTS = 16


@attrs.define(eq=False)
class TaskRecord:
    """The mutable state of one task; tests only ever see `FakeTask` snapshots of it."""

    task_id: str
    api_key: str
    endpoint: str
    params: Mapping[str, object]
    webhook_url: str | None
    submitted_at: float
    status: str = "QUEUED"
    started_at: float | None = None
    finished_at: float | None = None
    error_code: str = ""
    error_message: str = ""
    failed_reason: Mapping[str, object] = attrs.field(factory=dict)
    outputs: tuple[str, ...] = ()
    query_count: int = 0
    run_for: float | None = None
    planned_failure: str | None = None
    timer: asyncio.TimerHandle | None = None

    def snapshot(self) -> FakeTask:
        """A frozen copy of the current state."""
        return FakeTask(
            task_id=self.task_id,
            api_key=self.api_key,
            endpoint=self.endpoint,
            params=self.params,
            status=self.status,
            submitted_at=self.submitted_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            error_code=self.error_code,
            error_message=self.error_message,
            failed_reason=MappingProxyType(dict(self.failed_reason)),
            webhook_url=self.webhook_url,
            outputs=self.outputs,
            query_count=self.query_count,
        )


@attrs.define
class Counters:
    """Monotonic counters the server bumps as requests arrive."""

    requests_total: int = 0
    submit_requests: int = 0
    accepted_tasks: int = 0
    rejections: Counter[str] = attrs.field(factory=Counter)
    queries: int = 0
    uploads: int = 0
    downloads: int = 0
    file_requests_with_auth: int = 0
    cancels: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    webhook_deliveries: int = 0
    webhook_failures: int = 0
    webhook_attempts: int = 0
    faults_injected: Counter[str] = attrs.field(factory=Counter)
    requests_by_route: Counter[str] = attrs.field(factory=Counter)


class TasksView(Mapping[str, FakeTask]):
    """A read-only mapping of task id to a fresh `FakeTask` snapshot, O(1) per lookup."""

    def __init__(self, records: Mapping[str, TaskRecord]) -> None:
        self._records = records

    def __getitem__(self, task_id: str) -> FakeTask:
        return self._records[task_id].snapshot()

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


def _output_count(params: Mapping[str, object]) -> int:
    for name in _OUTPUT_COUNT_PARAMS:
        value = params.get(name)
        if isinstance(value, bool) or not isinstance(value, int | str):
            continue
        try:
            return min(max(int(value), 1), _MAX_OUTPUTS)
        except ValueError:
            continue
    return 1


class TaskBook:
    """Every task the fake accepted, and the bookkeeping that makes counts exact.

    All methods are synchronous and run on the event loop thread; each mutation
    wakes whoever waits in `wait_until`.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        queue_time: DurationSpec,
        duration: DurationSpec,
        failure_rate: float,
        failure_codes: Sequence[str],
        on_end: Callable[[TaskRecord], None],
    ) -> None:
        self._rng = rng
        self._queue_time = queue_time
        self._duration = duration
        self._failure_rate = failure_rate
        self._failure_codes = tuple(failure_codes)
        self._on_end = on_end
        self._loop: asyncio.AbstractEventLoop | None = None
        self.base_url = ""
        self.counters = Counters()
        self._tasks: dict[str, TaskRecord] = {}
        self._live: dict[str, TaskRecord] = {}
        self._live_per_key: Counter[str] = Counter()
        self._queued_per_key: Counter[str] = Counter()
        self._queued_total = 0
        self._max_live_per_key: dict[str, int] = {}
        self._queries_per_task: dict[str, int] = {}
        self._next_id = _TASK_ID_BASE + rng.randrange(10**17)
        self._changed: anyio.Event | None = None
        self.view = TasksView(self._tasks)

    # -- lifecycle -----------------------------------------------------------

    def open(self, loop: asyncio.AbstractEventLoop, base_url: str) -> None:
        """Start scheduling on *loop*; result URLs are built on *base_url*."""
        self._loop = loop
        self.base_url = base_url

    def close(self) -> None:
        """Cancel every pending timer; outstanding tasks stay as they are."""
        for record in self._live.values():
            if record.timer is not None:
                record.timer.cancel()
                record.timer = None
        self._loop = None

    # -- change notification -------------------------------------------------

    def notify(self) -> None:
        """Wake every `wait_until` so it re-checks its predicate."""
        event, self._changed = self._changed, None
        if event is not None:
            event.set()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once *predicate* holds, re-checking it after every state change."""
        while not predicate():
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()

    # -- queries about tasks ---------------------------------------------------

    def get(self, task_id: str) -> TaskRecord | None:
        """The record of *task_id*, or None."""
        return self._tasks.get(task_id)

    def live_count(self, api_key: str) -> int:
        """Tasks of *api_key* not yet terminal (QUEUED + RUNNING)."""
        return self._live_per_key[api_key]

    def queued_count(self, api_key: str) -> int:
        """Tasks of *api_key* now QUEUED."""
        return self._queued_per_key[api_key]

    def live_records(self) -> list[TaskRecord]:
        """Records of the tasks not yet terminal."""
        return list(self._live.values())

    # -- transitions -----------------------------------------------------------

    def create(
        self,
        api_key: str,
        endpoint: str,
        params: Mapping[str, object],
        webhook_url: str | None,
    ) -> TaskRecord:
        """Accept a task: draw its timing and fate, start its clock, count it."""
        loop = self._require_loop()
        self._next_id += 1
        record = TaskRecord(
            task_id=str(self._next_id),
            api_key=api_key,
            endpoint=endpoint,
            params=MappingProxyType(dict(params)),
            webhook_url=webhook_url,
            submitted_at=time.time(),
        )
        draft = record.snapshot()
        wait = draw(self._queue_time, draft, self._rng)
        record.run_for = draw(self._duration, draft, self._rng)
        if self._failure_rate > 0 and self._rng.random() < self._failure_rate:
            record.planned_failure = self._rng.choice(self._failure_codes)

        self._tasks[record.task_id] = record
        self._live[record.task_id] = record
        live = self._live_per_key[api_key] + 1
        self._live_per_key[api_key] = live
        if live > self._max_live_per_key.get(api_key, 0):
            self._max_live_per_key[api_key] = live
        self.counters.accepted_tasks += 1

        if wait is None or wait > 0:
            self._queued_per_key[api_key] += 1
            self._queued_total += 1
            if wait is not None:
                record.timer = loop.call_at(loop.time() + wait, self._start, record)
        else:
            record.status = "RUNNING"
            record.started_at = record.submitted_at
            self._schedule_end(record)
        self.notify()
        return record

    def client_id(self) -> str:
        """A fresh 32-hex-digit ``clientId``."""
        return f"{self._rng.getrandbits(128):032x}"

    def finish(self, task_id: str) -> None:
        """Make a QUEUED or RUNNING task SUCCESS now."""
        self._end(self._pending(task_id), "SUCCESS")

    def fail(self, task_id: str, code: str = "1015", message: str | None = None) -> None:
        """Make a QUEUED or RUNNING task FAILED now with *code*."""
        record = self._pending(task_id)
        self._end(record, "FAILED", code, message if message is not None else message_for(code))

    def cancel(self, task_id: str) -> None:
        """Make a QUEUED or RUNNING task CANCEL now."""
        record = self._pending(task_id)
        self.counters.cancels += 1
        self._end(record, "CANCEL")

    def count_query(self, record: TaskRecord) -> None:
        """Record one /query about *record*."""
        record.query_count += 1
        self._queries_per_task[record.task_id] = record.query_count

    def _pending(self, task_id: str) -> TaskRecord:
        record = self._tasks.get(task_id)
        if record is None:
            raise KeyError(task_id)
        if record.finished_at is not None:
            raise ValueError(f"task {task_id} is already {record.status}")
        return record

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the fake server is not running")
        return self._loop

    def _start(self, record: TaskRecord) -> None:
        record.timer = None
        if record.status != "QUEUED":
            return
        record.status = "RUNNING"
        record.started_at = time.time()
        self._queued_per_key[record.api_key] -= 1
        self._queued_total -= 1
        self._schedule_end(record)
        self.notify()

    def _schedule_end(self, record: TaskRecord) -> None:
        if record.run_for is None:
            return
        loop = self._require_loop()
        record.timer = loop.call_at(loop.time() + record.run_for, self._complete, record)

    def _complete(self, record: TaskRecord) -> None:
        record.timer = None
        code = record.planned_failure
        if code is None:
            self._end(record, "SUCCESS")
        else:
            self._end(record, "FAILED", code, message_for(code))

    def _end(self, record: TaskRecord, status: str, code: str = "", message: str = "") -> None:
        now = time.time()
        if record.timer is not None:
            record.timer.cancel()
            record.timer = None
        key = record.api_key
        if record.status == "QUEUED":
            self._queued_per_key[key] -= 1
            self._queued_total -= 1
            if status != "CANCEL":
                record.started_at = now
        self._live_per_key[key] -= 1
        del self._live[record.task_id]

        record.status = status
        record.finished_at = now
        record.error_code = code
        record.error_message = message
        if status == "SUCCESS":
            count = _output_count(record.params)
            ext = extension_for(record.endpoint)
            record.outputs = tuple(
                f"{self.base_url}/files/outputs/{record.task_id}/{n}.{ext}" for n in range(count)
            )
            self.counters.succeeded += 1
        elif status == "FAILED":
            record.failed_reason = failed_reason(code, message, record.endpoint, record.params)
            self.counters.failed += 1
        else:
            self.counters.cancelled += 1
        self.notify()
        self._on_end(record)

    # -- statistics ------------------------------------------------------------

    def stats(self) -> FakeStats:
        """A frozen snapshot of every counter."""
        c = self.counters
        return FakeStats(
            requests_total=c.requests_total,
            submit_requests=c.submit_requests,
            accepted_tasks=c.accepted_tasks,
            rejections=dict(c.rejections),
            queries=c.queries,
            queries_per_task=dict(self._queries_per_task),
            uploads=c.uploads,
            downloads=c.downloads,
            file_requests_with_auth=c.file_requests_with_auth,
            cancels=c.cancels,
            max_running_per_key=dict(self._max_live_per_key),
            running=len(self._live),
            queued=self._queued_total,
            succeeded=c.succeeded,
            failed=c.failed,
            cancelled=c.cancelled,
            webhook_deliveries=c.webhook_deliveries,
            webhook_failures=c.webhook_failures,
            webhook_attempts=c.webhook_attempts,
            faults_injected=dict(c.faults_injected),
            requests_by_route=dict(c.requests_by_route),
        )
