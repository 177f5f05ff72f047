"""``Job``: the handle of one RunningHub task, created by the client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ._models import JobResult
from ._poller import Poller, Tracked

__all__ = ["Job"]


class Job:
    """A task on RunningHub, as ``RunningHub.submit`` or ``RunningHub.attach`` returns it.

    A job belongs to the client, not to whoever awaits it: many coroutines may
    ``wait()`` on one job, and cancelling one of them cancels only that wait.
    The client keeps following the task until it ends (or until ``job_timeout``),
    so a later ``wait()`` still gets the result.
    """

    __slots__ = ("_cancel", "_poller", "_tracked", "params")

    def __init__(
        self,
        tracked: Tracked,
        poller: Poller,
        *,
        params: Mapping[str, Any] | None,
        cancel: Callable[[Tracked], Awaitable[bool]],
    ) -> None:
        self._tracked = tracked
        self._poller = poller
        self._cancel = cancel
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
        """
        tracked = self._tracked
        if tracked.outcome is None:
            self._poller.watch(tracked)
            try:
                await tracked.done.wait()
            finally:
                self._poller.unwatch(tracked)
        outcome = tracked.outcome
        if isinstance(outcome, JobResult):
            return outcome
        assert outcome is not None
        raise outcome

    async def cancel(self) -> bool:
        """Ask RunningHub to cancel the task.

        Returns True when it was cancelled, False when it had already ended
        (its outcome is then whatever it ended with).

        Raises:
            APIError: RunningHub refused for another reason.
            TransportError: no usable answer.
        """
        return await self._cancel(self._tracked)

    def __repr__(self) -> str:
        outcome = self._tracked.outcome
        state = "pending" if outcome is None else type(outcome).__name__
        return f"<Job {self.task_id} {self.endpoint or '?'} {state}>"
