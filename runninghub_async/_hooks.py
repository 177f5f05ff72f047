"""Client-wide event hooks: see the client work (submits, retries, throttling, slot waits, ends).

Subclass `Hooks`, override what you need, and pass an instance as
``RunningHub(hooks=...)``.  Every method is called synchronously on the event
loop, once per event, and must be quick and must not raise (an exception is
logged and dropped, never allowed to disturb a job).  With no hooks the client
does not even build the arguments: unused hooks cost nothing.
``runninghub_async.otel.OpenTelemetryHooks`` turns them into spans and metrics.
"""

from __future__ import annotations

import logging

from ._models import JobResult, TaskStatus

__all__ = ["Hooks"]

log = logging.getLogger("runninghub_async")


class Hooks:
    """No-op hooks to subclass; each method is one kind of event."""

    def submit(self, endpoint: str) -> None:
        """A submit to *endpoint* starts (it may still wait for a slot)."""

    def slot_wait(self, endpoint: str, seconds: float) -> None:
        """A submit waited *seconds* for a job slot (only called when it had to wait)."""

    def accepted(self, endpoint: str, task_id: str, seconds: float) -> None:
        """RunningHub accepted a submit *seconds* after it started."""

    def rejected(self, endpoint: str, code: str) -> None:
        """A submit was refused in a way that proves nothing was created (421, 1003, ...)
        and will be sent again."""

    def retry(self, what: str, error: BaseException, delay: float) -> None:
        """A call that is safe to repeat (*what*: its path) failed and goes again in *delay* s."""

    def throttled(self, retry_after: float | None) -> None:
        """RunningHub said "slow down" (1003, HTTP 429): the client's rate was lowered."""

    def query(self, endpoint: str | None) -> None:
        """The poller sends one status check of a job of *endpoint*."""

    def status(self, task_id: str, endpoint: str | None, status: TaskStatus) -> None:
        """A job's status changed (QUEUED, RUNNING, and the terminal one)."""

    def finished(
        self,
        task_id: str,
        endpoint: str | None,
        outcome: JobResult | BaseException,
        seconds: float,
    ) -> None:
        """A job ended *seconds* after it was submitted or attached: its result or error."""


def safely(hook: object, name: str, *args: object) -> None:
    """Call ``hook.<name>(*args)``, logging (never raising) what it raises."""
    try:
        getattr(hook, name)(*args)
    except Exception:
        log.exception("hook %s raised; ignored", name)
