"""How the client keeps a `Journal`: ends written in order by one task, and batch resumption.

The poller ends jobs synchronously; writing an end to a journal is I/O.  One
writer task, owned by the client, takes ends from an unbounded in-memory queue
and writes them in order, so the poller never waits on a disk or on Redis.  A
job that ends because the client closed is *not* an end: the task still runs on
RunningHub, and ``recover()`` must find it.
"""

from __future__ import annotations

import logging
import math

import anyio
import anyio.abc

from ._errors import (
    JobTimeoutError,
    RunningHubError,
    TaskCancelledError,
    TaskFailedError,
    TaskNotFoundError,
)
from ._journal import Journal, JournalEntry
from ._models import JobResult
from ._poller import Tracked

__all__ = ["JournalWriter", "end_status", "resumable"]

log = logging.getLogger("runninghub_async")


def end_status(outcome: JobResult | RunningHubError) -> str | None:
    """The journal status of a job's outcome, or None when the task did not end remotely."""
    if isinstance(outcome, JobResult):
        return "SUCCESS"
    if isinstance(outcome, TaskFailedError):
        return "FAILED"
    if isinstance(outcome, TaskCancelledError):
        return "CANCEL"
    if isinstance(outcome, TaskNotFoundError):
        return "NOT_FOUND"
    if isinstance(outcome, JobTimeoutError):
        return "TIMEOUT"  # the client asked RunningHub to cancel it
    return None


def resumable(entry: JournalEntry | None) -> str:
    """What ``run_many`` does with an item the journal knows as *entry*.

    ``"submit"`` (never seen, or refused before acceptance: nothing was spent),
    ``"done"`` (ended: skipped), ``"attach"`` (accepted and not ended: followed
    again) or ``"unknown"`` (an intent without a task id).
    """
    if entry is None or entry.status == "REJECTED":
        return "submit"
    if entry.status is not None:
        return "done"
    return "attach" if entry.task_id is not None else "unknown"


class JournalWriter:
    """Writes job ends to their journals, in order, from one task."""

    def __init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[
            tuple[Journal, str, str]
        ](math.inf)
        self._done = anyio.Event()

    def finished(self, tracked: Tracked, outcome: JobResult | RunningHubError) -> None:
        """The poller's hook: queue the end of a journaled job."""
        if tracked.journal is None or tracked.key is None:
            return
        status = end_status(outcome)
        if status is not None:
            try:
                self._send.send_nowait((tracked.journal, tracked.key, status))
            except anyio.ClosedResourceError:
                log.warning("job %s ended after the journal closed", tracked.task_id)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Write queued ends until `close` and the queue is empty."""
        task_status.started()
        try:
            async with self._receive:
                async for journal, key, status in self._receive:
                    try:
                        await journal.ended(key, status)
                    except Exception as exc:  # a journal fault must not end the client
                        log.warning("could not journal the end of %s (%s): %s", key, status, exc)
        finally:
            self._done.set()

    async def close(self, bound: float) -> None:
        """Stop taking ends; wait (shielded, at most *bound* s) for the queued ones."""
        self._send.close()
        with anyio.move_on_after(bound, shield=True):
            await self._done.wait()
