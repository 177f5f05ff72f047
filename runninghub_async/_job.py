"""``Job``: the handle of one RunningHub task, over the poller's task future."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs

from ._api import Api
from ._errors import APIError, AuthenticationError, ClientClosedError
from ._models import JobEvent, JobResult, TaskStatus
from ._poller import Poller, Tracked

__all__ = ["Job"]

# Cancel refusals that mean "the task already ended" (legacy codes: status error,
# not found, task finished).
_ENDED_CODES = frozenset({"805", "807", "423", "1004"})


class Job:
    """A task on RunningHub, as ``RunningHub.submit`` or ``RunningHub.attach`` returns it.

    A job belongs to the client, not to whoever awaits it: many coroutines may
    ``wait()`` on one job, and cancelling one of them cancels only that wait.
    The client keeps following the task until it ends (or until ``job_timeout``),
    so a later ``wait()`` still gets the result.
    """

    __slots__ = ("_api", "_poller", "_tracked", "params")

    def __init__(
        self, tracked: Tracked, poller: Poller, api: Api, *, params: Mapping[str, Any] | None
    ) -> None:
        self._tracked = tracked
        self._poller = poller
        self._api = api
        self.params = params
        """The params it was submitted with (None for an attached task)."""

    @property
    def task_id(self) -> str:
        """The RunningHub task id."""
        return self._tracked.task_id

    @property
    def endpoint(self) -> str | None:
        """The endpoint path it was submitted to, when known."""
        return self._tracked.endpoint

    @property
    def status(self) -> TaskStatus:
        """The last status the client saw (``UNKNOWN`` before the first answer)."""
        return self._tracked.status

    def done(self) -> bool:
        """Whether the job has an outcome (a result or an error) already."""
        return self._tracked.outcome is not None

    async def wait(self) -> JobResult:
        """Wait until the task ends and return its result.

        Cancelling this call cancels only this wait; the job goes on.

        Raises:
            TaskFailedError: the task ended FAILED.
            TaskCancelledError: the task was cancelled on RunningHub.
            TaskNotFoundError: RunningHub does not know the task.
            JobTimeoutError: it did not end within the client's ``job_timeout``.
            ClientClosedError: the client closed first.
            AuthenticationError: the key stopped working while waiting.
            ProtocolError: RunningHub said the task ended, in an answer that could
                not be read (``task_ended`` is True).
        """
        tracked = self._tracked
        if tracked.outcome is None:
            self._poller.watch(tracked)
            ended = tracked.ended()
            try:
                await ended
            finally:
                tracked.forget(ended)
                self._poller.unwatch(tracked)
        outcome = tracked.outcome
        if isinstance(outcome, JobResult):
            return outcome
        assert outcome is not None
        # The same exception object is raised to every waiter: start its traceback
        # afresh each time, so the thousandth wait's is as short as the first's.
        raise outcome.with_traceback(None)

    async def events(self) -> AsyncIterator[JobEvent]:
        """Each status change, as it is seen, ending after the last one.

        The stream starts with every event seen so far, so a late consumer misses
        nothing; several may iterate one job, and stopping early changes nothing
        else.  A job that ends locally (its deadline, the client closing) ends the
        stream without a terminal event; ``wait()`` then says why.
        """
        tracked = self._tracked
        seen = 0
        while True:
            while seen < len(tracked.events):
                event = tracked.events[seen]
                seen += 1
                yield event
            if tracked.outcome is not None:
                return
            changed = tracked.changed()
            self._poller.watch(tracked)  # someone is looking: keep the normal cadence
            try:
                await changed.wait()
            finally:
                self._poller.unwatch(tracked)

    async def cancel(self) -> bool:
        """Ask RunningHub to cancel the task.

        Returns True when it was cancelled, False when it had already ended
        (its outcome is then whatever it ended with).

        Raises:
            ClientClosedError: the client closed before the job ended (the task may
                still be running; a new client can ``attach`` and cancel it).
            APIError: RunningHub refused for another reason.
            TransportError: no usable answer.
        """
        tracked = self._tracked
        outcome = tracked.outcome
        if isinstance(outcome, ClientClosedError):
            # Ended here, not on RunningHub: "already ended" would be a lie.
            raise ClientClosedError(
                f"the client closed before task {tracked.task_id} ended; it was not cancelled",
                [tracked.task_id],
            )
        if outcome is not None:
            return False
        try:
            await self._api.cancel(tracked.task_id)
        except AuthenticationError:
            raise
        except APIError as exc:
            # Refused: most likely the task ended during the round trip.  Settle it.
            snapshot = await self._api.query(tracked.task_id)
            if self._poller.resolve(snapshot) or self.done():
                return False
            if exc.code in _ENDED_CODES:
                self._poller.poke(tracked.task_id)  # the query lags behind the end
                return False
            raise
        snapshot = await self._api.query(tracked.task_id)
        if self.done():
            return False
        if snapshot.status.is_terminal and snapshot.status is not TaskStatus.CANCEL:
            self._poller.resolve(snapshot)  # it ended before the cancel took effect
            return False
        # Accepted: the task is cancelled even if the query lags behind.
        self._poller.resolve(attrs.evolve(snapshot, status=TaskStatus.CANCEL))
        return True

    def __repr__(self) -> str:
        outcome = self._tracked.outcome
        state = self._tracked.status.value if outcome is None else type(outcome).__name__
        return f"<Job {self.task_id} {self.endpoint or '?'} {state}>"
