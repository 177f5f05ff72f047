"""The shared poller: one loop that checks every outstanding task and resolves its job.

Each tracked task sits in a heap keyed by the time of its next check, and in a
second heap keyed by its deadline.  The loop starts the checks that are due, at
most ``PollPolicy.max_concurrent`` at once and at most ``max_rate`` per second (on
top of the client's request budget), so its query rate is bounded whatever the
number of jobs.  Each check is one query, which the client bounds by
``PollPolicy.check_timeout``, so a server that stalls some answers cannot hold
the others up.  A deadline ends a job
whether or not a check of it is in flight.  Where checks go is `_cadence`'s job:
one `DurationModel` per endpoint learns from every check.

The poller resolves jobs and releases their slots; it never calls back into the
client.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import random
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import anyio.lowlevel

from ._concurrency import Workers
from ._config import PollPolicy
from ._errors import (
    AuthenticationError,
    ClientClosedError,
    JobTimeoutError,
    ProtocolError,
    RunningHubError,
    TaskNotFoundError,
)
from ._hooks import Hooks, safely
from ._limiter import Slot, monotonic, strict_bucket
from ._models import JobResult, TaskSnapshot
from ._schedule import Deadlines, Schedule
from ._tracked import PollerStatistics, Tracked, outcome_of

__all__ = ["Poller", "PollerStatistics", "Tracked"]

log = logging.getLogger("runninghub_async")

Clock = Callable[[], float]
Query = Callable[[str], Awaitable[TaskSnapshot]]
RemoteCancel = Callable[[str], Awaitable[None]]
Finished = Callable[["Tracked", "JobResult | RunningHubError"], None]

# Bound on the best-effort remote cancel after a job deadline.
_CANCEL_TIMEOUT = 10.0
_CHECK_TASK = "runninghub_async._poller.Poller._check"


class Poller:
    """One loop that checks every tracked task and resolves it when it ends."""

    def __init__(
        self,
        query: Query,
        policy: PollPolicy,
        *,
        job_timeout: float,
        remote_cancel: RemoteCancel,
        slot_demand: Callable[[], bool] = lambda: False,
        on_finished: Finished | None = None,
        hooks: Hooks | None = None,
        clock: Clock = monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._query = query
        self._policy = policy
        self._job_timeout = job_timeout
        self._remote_cancel = remote_cancel
        self._on_finished = on_finished
        self._hooks = hooks
        self._clock = clock
        self._rng = rng or random.Random()
        self._rate = strict_bucket(policy.max_rate) if policy.max_rate else None
        self._tracked: dict[str, Tracked] = {}
        self._heap: list[tuple[float, int, Tracked]] = []
        self._deadlines = Deadlines()
        self._seq = itertools.count()
        self._plan = Schedule(policy, self._rng, slot_demand)
        self._wake = asyncio.Event()
        self._checks = Workers(self._check, _CHECK_TASK, keep=policy.max_concurrent)
        self._closed = False
        self._in_flight = 0
        self._queries_sent = 0
        self._query_failures = 0
        self._resolved = 0

    # -- registration (sync) ------------------------------------------------------

    def track(
        self,
        task_id: str,
        *,
        endpoint: str | None,
        slot: Slot | None = None,
        submitted: bool | None = None,
        webhook_token: str | None = None,
    ) -> Tracked:
        """Follow *task_id*, or join the entry that already follows it.

        *slot* is released when the job ends.  A task this client just *submitted*
        (default: when it holds a slot) has "task not found" taken as RunningHub
        catching up for a while, and its duration is learned.  A job with a
        *webhook_token* expects a callback: polling is only its safety net.

        Raises:
            ClientClosedError: the poller is closed (the slot is released first).
        """
        if self._closed:
            if slot is not None:
                slot.release()
            raise ClientClosedError(
                f"the client closed before task {task_id} was followed", [task_id]
            )
        existing = self._tracked.get(task_id)
        if existing is not None:
            if slot is not None:
                slot.release()  # a second owner of the same task: its slot is not needed
            return existing
        now = self._clock()
        if submitted is None:
            submitted = slot is not None
        tracked = Tracked(
            task_id=task_id,
            endpoint=endpoint,
            submitted_at=now,
            deadline=now + self._job_timeout,
            grace_until=now + (self._policy.not_found_grace if submitted else 0.0),
            submitted=submitted,
            slot=slot,
            hooks=self._hooks,
            webhook_token=webhook_token,
        )
        self._tracked[task_id] = tracked
        self._deadlines.add(tracked)
        first = 0.0  # attach(): the task may have ended long ago, so look at once
        if submitted:
            first = self._plan.first_delay(tracked, now)
        self._schedule(tracked, first)
        return tracked

    def watch(self, tracked: Tracked) -> None:
        """A waiter arrived: bring a task checked at low priority back to its cadence."""
        tracked.waiters += 1
        if tracked.low_priority and tracked.outcome is None and not tracked.querying:
            tracked.low_priority = False
            self._schedule(tracked, self._plan.interval(tracked, self._clock()))

    def unwatch(self, tracked: Tracked) -> None:
        """A waiter left (got its answer, or was cancelled)."""
        tracked.waiters -= 1

    def get(self, task_id: str) -> Tracked | None:
        """The entry following *task_id*, if any."""
        return self._tracked.get(task_id)

    def poke(self, task_id: str) -> bool:
        """Check *task_id* at once (a webhook said it ended); False if it is not followed."""
        tracked = self._tracked.get(task_id)
        if tracked is None:
            return False
        if not tracked.querying:
            tracked.low_priority = False
            self._schedule(tracked, 0.0)
        return True

    def resolve(self, snapshot: TaskSnapshot) -> bool:
        """Resolve a tracked task from a snapshot obtained elsewhere (a submit, a cancel).

        Returns whether the snapshot ended the task.
        """
        tracked = self._tracked.get(snapshot.task_id)
        if tracked is None or not snapshot.status.is_terminal:
            return False
        self._finish(tracked, outcome_of(tracked, snapshot))
        return True

    def eta(self, tracked: Tracked) -> float | None:
        """Expected seconds until *tracked* ends, from what its endpoint's jobs took."""
        return self._plan.eta(tracked, self._clock())

    # -- the loop -------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Check due tasks until cancelled.  Start it with ``await tg.start(poller.run)``."""
        async with anyio.create_task_group() as tg:
            task_status.started()
            try:
                await self._loop(tg)
            finally:
                await self._checks.aclose()

    async def _loop(self, tg: anyio.abc.TaskGroup) -> None:
        while True:
            self._expire_due(tg)
            self._dispatch_due()
            timeout = self._deadlines.next_at() - self._clock()
            if self._heap and self._in_flight < self._policy.max_concurrent:
                timeout = min(timeout, self._heap[0][0] - self._clock())
            self._wake.clear()
            if timeout == math.inf:
                await self._wake.wait()
            elif timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
            else:
                await anyio.lowlevel.checkpoint()

    def _expire_due(self, tg: anyio.abc.TaskGroup) -> None:
        for tracked in self._deadlines.expired(self._clock(), len(self._tracked)):
            self._finish(tracked, JobTimeoutError(tracked.task_id, self._job_timeout))
            tg.start_soon(_cancel_remotely, self._remote_cancel, tracked.task_id)

    def _dispatch_due(self) -> None:
        now = self._clock()
        while self._heap and self._in_flight < self._policy.max_concurrent:
            due, _, tracked = self._heap[0]
            if due > now:
                return
            heapq.heappop(self._heap)
            if tracked.outcome is not None or tracked.querying or due != tracked.due:
                continue  # a stale entry: the task was rescheduled or has ended
            tracked.querying = True
            self._in_flight += 1
            self._checks.put(tracked)

    async def _check(self, tracked: Tracked) -> None:
        try:
            # A deadline that passes meanwhile interrupts this check (see `_finish`).
            tracked.check_task = asyncio.current_task()
            if self._rate is not None:
                await self._rate.acquire()
            self._queries_sent += 1
            if self._hooks is not None:
                safely(self._hooks, "query", tracked.endpoint)
            snapshot = await self._query(tracked.task_id)
        except TaskNotFoundError as exc:
            if self._clock() < tracked.grace_until:
                self._failed_check(tracked, "not found yet", count=False)
            else:
                self._finish(tracked, exc)
        except AuthenticationError as exc:
            self._finish(tracked, exc)
        except ProtocolError as exc:
            if exc.task_ended:  # asking again would get the same unreadable answer
                self._finish(tracked, exc)
            else:
                self._failed_check(tracked, type(exc).__name__)
        except RunningHubError as exc:
            # Everything else is taken as passing; the job deadline bounds the retries.
            self._failed_check(tracked, type(exc).__name__)
        except Exception as exc:
            # A bug (ours or a wrapped query's) must not leave the job unchecked for good.
            log.exception("status check of task %s failed unexpectedly", tracked.task_id)
            self._failed_check(tracked, type(exc).__name__)
        else:
            tracked.failures = 0
            if snapshot.status.is_terminal:
                self._finish(tracked, outcome_of(tracked, snapshot))
            else:
                tracked.last_pending_at = now = self._clock()
                self._plan.pending(tracked, now)
                tracked.note(snapshot.status, self.eta(tracked))
                self._schedule(tracked, self._plan.interval(tracked, now))
        finally:
            tracked.check_task = None
            tracked.querying = False
            self._in_flight -= 1
            if self._in_flight == self._policy.max_concurrent - 1:
                self._wake.set()  # a place for a check opened: due ones may have waited for it

    def _failed_check(self, tracked: Tracked, why: str, *, count: bool = True) -> None:
        if count:
            self._query_failures += 1
            tracked.failures += 1
        log.debug("check of %s failed (%s); retrying", tracked.task_id, why)
        self._schedule(tracked, self._plan.retry_delay(tracked))

    # -- scheduling -------------------------------------------------------------------

    def _schedule(self, tracked: Tracked, delay: float) -> None:
        if tracked.outcome is not None:
            return
        due = self._clock() + max(0.0, delay)
        tracked.due = due
        heapq.heappush(self._heap, (due, next(self._seq), tracked))
        if self._heap[0][2] is tracked:
            self._wake.set()

    # -- outcomes ---------------------------------------------------------------------

    def _finish(self, tracked: Tracked, outcome: JobResult | RunningHubError) -> None:
        if tracked.outcome is not None:
            return
        tracked.outcome = outcome
        if self._tracked.get(tracked.task_id) is tracked:
            del self._tracked[tracked.task_id]
        self._resolved += 1
        self._plan.ended(tracked, outcome, self._clock())
        check = tracked.check_task
        if check is not None and check is not asyncio.current_task():
            self._checks.interrupt(check)  # its answer no longer matters
        slot, tracked.slot = tracked.slot, None
        if slot is not None:
            slot.release()
        if self._on_finished is not None:
            try:
                self._on_finished(tracked, outcome)
            except Exception:
                # Bookkeeping (costs, journal, hooks) must never keep waiters from waking.
                log.exception("recording the end of task %s failed", tracked.task_id)
        tracked.end()

    # -- shutdown and introspection -----------------------------------------------------

    def close(self) -> None:
        """Stop accepting tasks and end every outstanding one with ClientClosedError."""
        self._closed = True
        pending = list(self._tracked.values())
        ids = [t.task_id for t in pending]
        _warn_unfollowed(pending)
        for tracked in pending:
            self._finish(
                tracked,
                ClientClosedError(
                    f"the client closed before task {tracked.task_id} ended "
                    f"({len(ids)} task(s) outstanding)",
                    ids,
                ),
            )

    def statistics(self) -> PollerStatistics:
        """A snapshot of the poller's state."""
        return PollerStatistics(
            outstanding=len(self._tracked),
            waiting=sum(1 for t in self._tracked.values() if t.waiters),
            queries_in_flight=self._in_flight,
            queries_sent=self._queries_sent,
            query_failures=self._query_failures,
            resolved=self._resolved,
        )

    def __repr__(self) -> str:
        s = self.statistics()
        return (
            f"<Poller outstanding={s.outstanding} in_flight={s.queries_in_flight} "
            f"sent={s.queries_sent}>"
        )


async def _cancel_remotely(remote_cancel: RemoteCancel, task_id: str) -> None:
    """Best effort, after a job deadline: bounded, shielded, never raised."""
    with anyio.move_on_after(_CANCEL_TIMEOUT, shield=True):
        try:
            await remote_cancel(task_id)
        except RunningHubError as exc:
            log.warning("could not cancel timed-out task %s: %s", task_id, exc)


def _warn_unfollowed(pending: list[Tracked]) -> None:
    """Name the tasks a close leaves running that no journal records.

    Paid tasks nobody will see end: the waiters hear it, a fire-and-forget caller
    only here.  A journal's `recover()` re-attaches the journaled ones.
    """
    lost = [t.task_id for t in pending if t.journal is None]
    if lost:
        log.warning(
            "the client closed with %d task(s) not ended, no longer followed: %s%s",
            len(lost),
            ", ".join(lost[:10]),
            ", ..." if len(lost) > 10 else "",
        )
