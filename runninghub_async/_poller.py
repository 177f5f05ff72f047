"""The shared poller: one loop that checks every outstanding task and resolves its job.

Each tracked task sits in a heap keyed by the time of its next check.  The loop
starts the checks that are due, at most ``PollPolicy.max_concurrent`` at once and
at most ``max_rate`` per second (on top of the client's own request budget), so
its query rate is bounded whatever the number of jobs.  A check that finds the
task ended resolves it; otherwise the task goes back into the heap.

Cadence: the first check of a job comes near the earliest time jobs of the same
endpoint have been seen to end; around their typical duration checks are dense;
past it they back off.  A job nobody waits on is checked at ``max_interval``.
"""

from __future__ import annotations

import bisect
import collections
import heapq
import itertools
import logging
import math
import random
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import attrs

from ._config import PollPolicy
from ._errors import (
    AuthenticationError,
    ClientClosedError,
    JobTimeoutError,
    RunningHubError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
)
from ._limiter import TokenBucket, monotonic
from ._models import JobResult, TaskSnapshot, TaskStatus

__all__ = ["Poller", "PollerStatistics", "Tracked"]

log = logging.getLogger("runninghub_async")

Clock = Callable[[], float]
Query = Callable[[str], Awaitable[TaskSnapshot]]
RemoteCancel = Callable[[str], Awaitable[None]]

# Below this many successful jobs an endpoint's durations are not trusted yet.
_MIN_SAMPLES = 2
# The first check comes at this quantile of learned durations; checks stay dense up to _DENSE_UNTIL.
_FIRST_CHECK = 0.1
_DENSE_UNTIL = 0.9
# Bound on the best-effort remote cancel after a job deadline.
_CANCEL_TIMEOUT = 10.0


@attrs.define(eq=False, repr=False)
class Tracked:
    """One task the poller follows, and the outcome its waiters will see."""

    task_id: str
    endpoint: str | None
    submitted_at: float
    deadline: float
    grace_until: float
    on_done: Callable[[], None] | None
    submitted: bool
    done: anyio.Event = attrs.field(factory=anyio.Event)
    outcome: JobResult | RunningHubError | None = None
    waiters: int = 0
    due: float = math.inf
    last_pending_at: float | None = None
    checks: int = 0
    failures: int = 0
    querying: bool = False
    low_priority: bool = False

    def __repr__(self) -> str:
        state = "done" if self.outcome is not None else "pending"
        return f"<Tracked {self.task_id} {state} waiters={self.waiters}>"


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


class _Durations:
    """Recent job durations per endpoint, to place checks where jobs tend to end."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._recent: dict[str | None, collections.deque[float]] = {}
        self._sorted: dict[str | None, list[float]] = {}

    def add(self, endpoint: str | None, seconds: float) -> None:
        recent = self._recent.setdefault(endpoint, collections.deque())
        ordered = self._sorted.setdefault(endpoint, [])
        if len(recent) == self._size:
            ordered.pop(bisect.bisect_left(ordered, recent.popleft()))
        recent.append(seconds)
        bisect.insort(ordered, seconds)

    def quantiles(self, endpoint: str | None) -> tuple[float, float, float] | None:
        """(first check, typical, end of dense checks) in seconds, or None while unknown."""
        ordered = self._sorted.get(endpoint)
        if not ordered or len(ordered) < _MIN_SAMPLES:
            return None

        def at(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return at(_FIRST_CHECK), at(0.5), at(_DENSE_UNTIL)


def _strict_bucket(rate: float) -> TokenBucket:
    """A bucket that never lets *rate* calls through in any one second.

    A bucket of burst b and refill r passes at most ``b + r`` calls a second: with
    ``r = rate - b`` that is *rate*.  A small bank (1/20 s) absorbs the time sleeps
    overshoot, which a burst of one would lose.
    """
    burst = max(1.0, rate / 20)
    return TokenBucket(max(rate - burst, rate / 2), burst=burst)


class Poller:
    """One loop that checks every tracked task and resolves it when it ends."""

    def __init__(
        self,
        query: Query,
        policy: PollPolicy,
        *,
        job_timeout: float,
        remote_cancel: RemoteCancel,
        clock: Clock = monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._query = query
        self._policy = policy
        self._job_timeout = job_timeout
        self._remote_cancel = remote_cancel
        self._clock = clock
        self._rng = rng or random.Random()
        self._rate = _strict_bucket(policy.max_rate) if policy.max_rate else None
        self._tracked: dict[str, Tracked] = {}
        self._heap: list[tuple[float, int, Tracked]] = []
        self._seq = itertools.count()
        self._durations = _Durations(policy.history)
        self._wake = anyio.Event()
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False
        self._in_flight = 0
        self._queries_sent = 0
        self._query_failures = 0
        self._resolved = 0

    # -- registration (sync, called by the client) ------------------------------

    def track(
        self,
        task_id: str,
        *,
        endpoint: str | None,
        on_done: Callable[[], None] | None = None,
        submitted: bool = False,
    ) -> Tracked:
        """Follow *task_id*, or join the entry that already follows it.

        *submitted* marks a task this client just submitted: "task not found" is
        then taken as RunningHub catching up for a while, and its duration is
        learned.  *on_done* runs once when tracking ends.
        """
        if self._closed:
            raise ClientClosedError("the client is closed", [task_id])
        existing = self._tracked.get(task_id)
        if existing is not None:
            if on_done is not None:
                # A second owner of the same task (submit answered twice): free its slot now.
                on_done()
            return existing
        now = self._clock()
        tracked = Tracked(
            task_id=task_id,
            endpoint=endpoint,
            submitted_at=now,
            deadline=now + self._job_timeout,
            grace_until=now + (self._policy.not_found_grace if submitted else 0.0),
            on_done=on_done,
            submitted=submitted,
        )
        self._tracked[task_id] = tracked
        self._schedule(tracked, self._first_delay(tracked))
        return tracked

    def watch(self, tracked: Tracked) -> None:
        """A waiter arrived: bring a task checked at low priority back to its cadence."""
        tracked.waiters += 1
        if tracked.low_priority and tracked.outcome is None and not tracked.querying:
            tracked.low_priority = False
            self._schedule(tracked, self._interval(tracked))

    def unwatch(self, tracked: Tracked) -> None:
        """A waiter left (got its answer, or was cancelled)."""
        tracked.waiters -= 1

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
        """Resolve a tracked task from a snapshot obtained elsewhere (a webhook, a submit).

        Returns whether the snapshot ended the task.
        """
        tracked = self._tracked.get(snapshot.task_id)
        if tracked is None or not snapshot.status.is_terminal:
            return False
        self._finish(tracked, self._outcome(tracked, snapshot))
        return True

    # -- the loop -------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Check due tasks until cancelled.  Start it with ``await tg.start(poller.run)``."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            while True:
                self._dispatch_due(tg)
                if self._heap and self._in_flight < self._policy.max_concurrent:
                    timeout = self._heap[0][0] - self._clock()
                else:
                    timeout = math.inf
                self._wake = anyio.Event()
                if timeout == math.inf:
                    await self._wake.wait()
                else:
                    with anyio.move_on_after(timeout):
                        await self._wake.wait()

    def _dispatch_due(self, tg: anyio.abc.TaskGroup) -> None:
        now = self._clock()
        while self._heap and self._in_flight < self._policy.max_concurrent:
            due, _, tracked = self._heap[0]
            if due > now:
                return
            heapq.heappop(self._heap)
            if tracked.outcome is not None or tracked.querying or due != tracked.due:
                continue  # a stale entry: the task was rescheduled or has ended
            if now >= tracked.deadline:
                self._expire(tracked, tg)
                continue
            tracked.querying = True
            self._in_flight += 1
            tg.start_soon(self._check, tracked)

    async def _check(self, tracked: Tracked) -> None:
        try:
            if self._rate is not None:
                await self._rate.acquire()
            self._queries_sent += 1
            tracked.checks += 1
            snapshot = await self._query(tracked.task_id)
        except TaskNotFoundError as exc:
            if self._clock() < tracked.grace_until:
                self._retry_later(tracked)
            else:
                self._finish(tracked, exc)
        except AuthenticationError as exc:
            self._finish(tracked, exc)
        except RunningHubError as exc:
            # Everything else is taken as passing; the job deadline bounds the retries.
            self._query_failures += 1
            tracked.failures += 1
            log.debug("query of %s failed (%s); retrying", tracked.task_id, exc)
            self._retry_later(tracked)
        else:
            tracked.failures = 0
            if snapshot.status.is_terminal:
                self._finish(tracked, self._outcome(tracked, snapshot))
            else:
                tracked.last_pending_at = self._clock()
                self._schedule(tracked, self._interval(tracked))
        finally:
            tracked.querying = False
            self._in_flight -= 1
            self._wake.set()

    # -- scheduling -------------------------------------------------------------

    def _schedule(self, tracked: Tracked, delay: float) -> None:
        if tracked.outcome is not None:
            return
        due = min(self._clock() + max(0.0, delay), tracked.deadline)
        tracked.due = due
        heapq.heappush(self._heap, (due, next(self._seq), tracked))
        if self._heap[0][2] is tracked:
            self._wake.set()

    def _first_delay(self, tracked: Tracked) -> float:
        if not tracked.submitted:
            # attach(): the task may have ended long ago, so look at once.
            return 0.0
        learned = self._durations.quantiles(tracked.endpoint)
        if learned is None:
            return self._policy.initial_delay
        return self._policy.spread(learned[0], self._rng)

    def _interval(self, tracked: Tracked) -> float:
        policy = self._policy
        if tracked.waiters == 0:
            tracked.low_priority = True
            return policy.max_interval
        elapsed = self._clock() - tracked.submitted_at
        learned = self._durations.quantiles(tracked.endpoint)
        if learned is None:
            # Nothing known yet: each check at `backoff` times the age of the last one,
            # so a job of any length costs a few checks until its peers teach us more.
            base = elapsed * (policy.backoff - 1)
        else:
            _, typical, dense_until = learned
            base = typical * policy.interval_fraction
            if elapsed > dense_until:
                overrun = elapsed - dense_until
                base = max(base, overrun * (policy.backoff - 1))
        base = min(policy.max_interval, max(policy.min_interval, base))
        return policy.spread(base, self._rng)

    def _retry_later(self, tracked: Tracked) -> None:
        policy = self._policy
        backoff = policy.min_interval * 2 ** min(tracked.failures, 10)
        self._schedule(tracked, policy.spread(min(policy.max_interval, backoff), self._rng))

    # -- outcomes ---------------------------------------------------------------

    def _outcome(self, tracked: Tracked, snapshot: TaskSnapshot) -> JobResult | RunningHubError:
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

    def _finish(self, tracked: Tracked, outcome: JobResult | RunningHubError) -> None:
        if tracked.outcome is not None:
            return
        tracked.outcome = outcome
        if self._tracked.get(tracked.task_id) is tracked:
            del self._tracked[tracked.task_id]
        self._resolved += 1
        if isinstance(outcome, JobResult):
            # Failures can be much faster (a moderation refusal): learn from successes only.
            self._learn(tracked)
        on_done, tracked.on_done = tracked.on_done, None
        if on_done is not None:
            on_done()
        tracked.done.set()

    def _learn(self, tracked: Tracked) -> None:
        if not tracked.submitted:  # only jobs whose submit time is known
            return
        # The task ended between the last check that saw it pending (or its submit)
        # and now: take the middle.  For a job already done at its first check this
        # guesses low on purpose: the next first checks come earlier until one finds
        # a job still running.  Taking the check time instead would only ever push
        # first checks later.
        now = self._clock()
        lower = (
            tracked.last_pending_at if tracked.last_pending_at is not None else tracked.submitted_at
        )
        self._durations.add(tracked.endpoint, (lower + now) / 2 - tracked.submitted_at)

    def _expire(self, tracked: Tracked, tg: anyio.abc.TaskGroup) -> None:
        self._finish(tracked, JobTimeoutError(tracked.task_id, self._job_timeout))
        tg.start_soon(self._cancel_remotely, tracked.task_id)

    async def _cancel_remotely(self, task_id: str) -> None:
        with anyio.move_on_after(_CANCEL_TIMEOUT, shield=True):
            try:
                await self._remote_cancel(task_id)
            except RunningHubError as exc:
                log.warning("could not cancel timed-out task %s: %s", task_id, exc)

    # -- shutdown and introspection -----------------------------------------------

    def close(self) -> None:
        """Stop accepting tasks and end every outstanding one with ClientClosedError."""
        self._closed = True
        pending = list(self._tracked.values())
        ids = [t.task_id for t in pending]
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
