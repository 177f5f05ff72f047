"""OpenTelemetry for runninghub_async (extra ``otel``): the client's hooks as spans and metrics.

    from runninghub_async import RunningHub
    from runninghub_async.otel import OpenTelemetryHooks

    async with RunningHub(hooks=OpenTelemetryHooks()) as client: ...

Metrics (meter ``runninghub_async``): ``runninghub.submits`` (by endpoint),
``runninghub.jobs.in_flight`` (accepted and not ended), ``runninghub.slot_wait`` (s),
``runninghub.queries`` (status checks, by endpoint), ``runninghub.rejections``
(by code: 421, 1003, ...), ``runninghub.throttled``, ``runninghub.retries`` and
``runninghub.job.duration`` (s, by endpoint and outcome).  Spans (tracer
``runninghub_async``): one ``runninghub.job`` span per accepted job, from
acceptance to its end, with an event per status change; a failed job's span has
an error status.  The providers default to OpenTelemetry's global ones.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, Status, StatusCode

from ._hooks import Hooks
from ._models import JobResult, TaskStatus

__all__ = ["OpenTelemetryHooks"]

_NAME = "runninghub_async"


class OpenTelemetryHooks(Hooks):
    """`Hooks` that record OpenTelemetry metrics and one span per job.

    Args:
        meter_provider: where metrics go (default: the global provider).
        tracer_provider: where spans go (default: the global provider).
    """

    def __init__(self, *, meter_provider: Any = None, tracer_provider: Any = None) -> None:
        meter = metrics.get_meter(_NAME, meter_provider=meter_provider)
        self._tracer = trace.get_tracer(_NAME, tracer_provider=tracer_provider)
        self._submits = meter.create_counter("runninghub.submits", description="submits started")
        self._in_flight = meter.create_up_down_counter(
            "runninghub.jobs.in_flight", description="jobs accepted and not ended"
        )
        self._slot_wait = meter.create_histogram(
            "runninghub.slot_wait", unit="s", description="time submits waited for a slot"
        )
        self._queries = meter.create_counter("runninghub.queries", description="status checks")
        self._rejections = meter.create_counter(
            "runninghub.rejections", description="submits refused and sent again, by code"
        )
        self._throttled = meter.create_counter(
            "runninghub.throttled", description="rate rejections (1003, 429)"
        )
        self._retries = meter.create_counter("runninghub.retries", description="calls retried")
        self._duration = meter.create_histogram(
            "runninghub.job.duration", unit="s", description="submit to end, by outcome"
        )
        # One span per job still running: bounded by the jobs outstanding.
        self._spans: dict[str, Span] = {}

    def submit(self, endpoint: str) -> None:
        """Count a submit."""
        self._submits.add(1, {"endpoint": endpoint})

    def slot_wait(self, endpoint: str, seconds: float) -> None:
        """Record a slot wait."""
        self._slot_wait.record(seconds, {"endpoint": endpoint})

    def accepted(self, endpoint: str, task_id: str, seconds: float) -> None:
        """Open the job's span."""
        self._in_flight.add(1, {"endpoint": endpoint})
        attributes = {"runninghub.endpoint": endpoint, "runninghub.task_id": task_id}
        span = self._tracer.start_span("runninghub.job", attributes=attributes)
        self._spans[task_id] = span

    def rejected(self, endpoint: str, code: str) -> None:
        """Count a rejection by code."""
        self._rejections.add(1, {"endpoint": endpoint, "code": code})

    def retry(self, what: str, error: BaseException, delay: float) -> None:
        """Count a retry."""
        self._retries.add(1, {"call": what, "error": type(error).__name__})

    def throttled(self, retry_after: float | None) -> None:
        """Count a throttle."""
        self._throttled.add(1)

    def query(self, endpoint: str | None) -> None:
        """Count a status check."""
        self._queries.add(1, {"endpoint": endpoint or ""})

    def status(self, task_id: str, endpoint: str | None, status: TaskStatus) -> None:
        """An event on the job's span."""
        span = self._spans.get(task_id)
        if span is not None:
            span.add_event("status", {"runninghub.status": status.value})

    def finished(
        self,
        task_id: str,
        endpoint: str | None,
        outcome: JobResult | BaseException,
        seconds: float,
    ) -> None:
        """Record the job's duration and close its span."""
        kind = "success" if isinstance(outcome, JobResult) else type(outcome).__name__
        attributes = {"endpoint": endpoint or "", "outcome": kind}
        self._duration.record(seconds, attributes)
        span = self._spans.pop(task_id, None)
        if span is None:
            return  # attached, not submitted here: no span was opened
        self._in_flight.add(-1, {"endpoint": endpoint or ""})
        if not isinstance(outcome, JobResult):
            span.set_status(Status(StatusCode.ERROR, str(outcome)))
        span.end()
