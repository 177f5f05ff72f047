"""Where the poller puts a job's checks: the glue between jobs and `_cadence`'s models.

One `DurationModel` per endpoint, fed by every check of the jobs this client
submitted; the questions the poller asks (first check, next check, retry, ETA)
answered from it and the `PollPolicy`.  No clock reads: times come in.
"""

from __future__ import annotations

import bisect
import collections
import math
import random
from collections.abc import Callable, Sequence

from ._cadence import DurationModel, prior_for
from ._config import PollPolicy
from ._errors import RunningHubError
from ._models import JobResult
from ._tracked import Tracked

__all__ = ["Deadlines", "Schedule"]


class Schedule:
    """The check times of every job of one client."""

    def __init__(
        self,
        policy: PollPolicy,
        rng: random.Random,
        slot_demand: Callable[[], bool] = lambda: False,
    ) -> None:
        self._policy = policy
        self._rng = rng
        self._slot_demand = slot_demand
        self._models: dict[str | None, DurationModel] = {}

    def model(self, endpoint: str | None) -> DurationModel:
        """The duration model of *endpoint*, started from its prior on first use."""
        model = self._models.get(endpoint)
        if model is None:
            median, spread = prior_for(endpoint)
            if self._policy.typical_duration is not None:
                median = self._policy.typical_duration
            model = DurationModel(
                prior_median=median, prior_spread=spread, history=self._policy.history
            )
            self._models[endpoint] = model
        return model

    def first_delay(self, tracked: Tracked, now: float) -> float:
        """Seconds from submit to the first check of a job this client submitted."""
        policy = self._policy
        model = self.model(tracked.endpoint)
        model.job_started(tracked.task_id, now)
        if tracked.webhook_token is not None:
            # The callback will say when it ends: the first check only once nearly
            # every job of its kind would have ended, in case the callback is lost.
            return max(policy.max_interval, model.quantile(0.95))
        first = policy.spread(
            model.next_check(tracked.task_id, now, target_delay=policy.target_delay), self._rng
        )
        return first if policy.initial_delay is None else min(first, policy.initial_delay)

    def interval(self, tracked: Tracked, now: float) -> float:
        """Seconds to the next check of a job still running.

        A job nobody waits for is checked rarely (and marked low priority), unless
        its slot is wanted: then it must be freed within about one interval of its end.
        """
        policy = self._policy
        if tracked.waiters == 0 and not (tracked.slot is not None and self._slot_demand()):
            tracked.low_priority = True
            return policy.max_interval
        if tracked.webhook_token is not None and not tracked.webhook_seen:
            # Its callback will say when it ends: polling is only the safety net.
            return policy.spread(policy.max_interval, self._rng)
        if not tracked.submitted:
            return policy.spread(2 * policy.target_delay, self._rng)
        model = self.model(tracked.endpoint)
        delay = model.next_check(tracked.task_id, now, target_delay=policy.target_delay)
        return policy.spread(delay, self._rng)

    def retry_delay(self, tracked: Tracked) -> float:
        """Seconds to the next try after ``tracked.failures`` failed checks in a row."""
        backoff = self._policy.min_interval * 2 ** min(tracked.failures, 10)
        return self._policy.spread(backoff, self._rng)

    def pending(self, tracked: Tracked, now: float) -> None:
        """A check saw *tracked* still running."""
        if tracked.submitted:
            self.model(tracked.endpoint).job_pending(tracked.task_id, now)

    def ended(self, tracked: Tracked, outcome: JobResult | RunningHubError, now: float) -> None:
        """*tracked* ended; successes are duration samples, the rest are dropped."""
        if not tracked.submitted:
            return
        model = self.model(tracked.endpoint)
        if isinstance(outcome, JobResult):
            if tracked.webhook_seen:
                # Its callback came as it ended, and the check right after found it
                # done: the end is known to within that round trip.
                model.job_pending(tracked.task_id, tracked.webhook_seen_at or now)
            model.job_ended(tracked.task_id, now)
        else:
            # Failures can be much faster (a moderation refusal): not a duration sample.
            model.job_dropped(tracked.task_id)

    def eta(self, tracked: Tracked, now: float) -> float | None:
        """Expected seconds until *tracked* ends (None for an attached task)."""
        if not tracked.submitted:
            return None
        return self.model(tracked.endpoint).eta(now - tracked.submitted_at)


class Deadlines:
    """Every tracked job's deadline, soonest first.

    Every job gets the same timeout from a monotonic clock, so deadlines arrive in
    order: a queue, not a heap (no entry tuple, no sift per job).  An out-of-order
    one (a clock that stepped back) is inserted in place.  Ended jobs leave their
    entries behind (removing from the middle costs a scan); they are skipped when
    due and dropped in bulk once they outnumber the live ones.
    """

    def __init__(self) -> None:
        self._queue: collections.deque[Tracked] = collections.deque()

    def add(self, tracked: Tracked) -> None:
        """Expire *tracked* at ``tracked.deadline`` unless it ends before."""
        queue = self._queue
        if queue and tracked.deadline < queue[-1].deadline:
            queue.insert(bisect.bisect_right(queue, tracked.deadline, key=_deadline), tracked)
        else:
            queue.append(tracked)

    def next_at(self) -> float:
        """When the soonest deadline passes (infinity when there is none)."""
        return self._queue[0].deadline if self._queue else math.inf

    def expired(self, now: float, live: int) -> Sequence[Tracked]:
        """The jobs still running whose deadline is at or before *now* (*live*: jobs tracked)."""
        queue = self._queue
        if len(queue) > 2 * live + 1024:
            self._queue = queue = collections.deque(t for t in queue if t.outcome is None)
        if not queue or queue[0].deadline > now:
            return ()  # the poller asks on every pass: nothing built when nothing is due
        due: list[Tracked] = []
        while queue and queue[0].deadline <= now:
            tracked = queue.popleft()
            if tracked.outcome is None:
                due.append(tracked)
        return due


def _deadline(tracked: Tracked) -> float:
    return tracked.deadline
