"""`Tracked`: one followed task, the future its waiters wait on; and the poller's snapshot."""

from __future__ import annotations

import asyncio
import math
import time

import attrs

from ._errors import RunningHubError, TaskCancelledError, TaskFailedError
from ._hooks import Hooks, safely
from ._journal import Journal
from ._limiter import Slot
from ._models import JobEvent, JobResult, TaskSnapshot, TaskStatus

__all__ = ["PollerStatistics", "Tracked", "outcome_of"]


@attrs.define(eq=False, repr=False)
class Tracked:
    """One task the poller follows: the future its waiters wait on, and its schedule."""

    task_id: str
    endpoint: str | None
    submitted_at: float
    deadline: float
    grace_until: float
    submitted: bool
    slot: Slot | None
    # One future per waiter (``Job.wait``), all set when the job ends.
    _enders: list[asyncio.Future[None]] = attrs.field(factory=list)
    outcome: JobResult | RunningHubError | None = None
    status: TaskStatus = TaskStatus.UNKNOWN
    events: list[JobEvent] = attrs.field(factory=list)
    # Made only when someone follows the events: most jobs are only waited for.
    _changed: asyncio.Event | None = None
    waiters: int = 0
    due: float = math.inf
    last_pending_at: float | None = None
    failures: int = 0
    querying: bool = False
    low_priority: bool = False
    check_task: asyncio.Task[None] | None = None
    webhook_token: str | None = None
    webhook_seen: bool = False
    webhook_seen_at: float | None = None
    journal: Journal | None = None
    key: str | None = None
    hooks: Hooks | None = None

    def note(self, status: TaskStatus, eta: float | None) -> None:
        """Record *status* if it is new, and wake whoever follows the job's events."""
        if status is self.status:
            return
        self.status = status
        self.events.append(JobEvent(status, time.time(), eta))
        if self._changed is not None:
            self.wake()
        if self.hooks is not None:
            safely(self.hooks, "status", self.task_id, self.endpoint, status)

    def ended(self) -> asyncio.Future[None]:
        """A future of this waiter's own, done when the job ends (call `forget` after)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.outcome is not None:
            future.set_result(None)
        else:
            self._enders.append(future)
        return future

    def forget(self, future: asyncio.Future[None]) -> None:
        """A waiter left: drop its future (cancelled waits must not pile up)."""
        enders = self._enders
        if future in enders:  # else gone already: the job ended
            enders.remove(future)

    def end(self) -> None:
        """The job has its outcome: note a remote end as an event, wake every waiter."""
        # A local end (deadline, close, not found) only ends the stream of events,
        # and wait() says why.
        outcome = self.outcome
        if isinstance(outcome, JobResult):
            self.note(TaskStatus.SUCCESS, 0.0)
        elif isinstance(outcome, TaskCancelledError):
            self.note(TaskStatus.CANCEL, 0.0)
        elif isinstance(outcome, TaskFailedError):
            self.note(TaskStatus.FAILED, 0.0)
        enders, self._enders = self._enders, []
        for future in enders:
            if not future.done():
                future.set_result(None)
        if self._changed is not None:
            self.wake()

    def changed(self) -> asyncio.Event:
        """An event set at the next status change or end (a fresh one after that)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def wake(self) -> None:
        """Wake whoever waits on `changed`."""
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def __repr__(self) -> str:
        state = "done" if self.outcome is not None else "pending"
        return f"<Tracked {self.task_id} {state} waiters={self.waiters}>"


def outcome_of(tracked: Tracked, snapshot: TaskSnapshot) -> JobResult | RunningHubError:
    """What a terminal *snapshot* of *tracked* means to its waiters."""
    if snapshot.status is TaskStatus.SUCCESS:
        return JobResult(
            task_id=tracked.task_id,
            status=snapshot.status,
            outputs=snapshot.outputs,
            usage=snapshot.usage,
            endpoint=tracked.endpoint,
        )
    if snapshot.status is TaskStatus.CANCEL:
        return TaskCancelledError(tracked.task_id)
    return TaskFailedError(
        tracked.task_id, snapshot.error_code, snapshot.error_message, snapshot.failed_reason
    )


@attrs.frozen
class PollerStatistics:
    """A snapshot of the poller.

    Attributes:
        outstanding: tasks being tracked.
        waiting: tasks with at least one waiter.
        queries_in_flight: checks running now.
        queries_sent: checks started since the client opened.
        query_failures: checks that got no usable answer (retried later).
        resolved: tasks that reached an outcome.
    """

    outstanding: int
    waiting: int
    queries_in_flight: int
    queries_sent: int
    query_failures: int
    resolved: int
