"""Seeing a job: status events, hooks, OpenTelemetry, results as bytes and images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runninghub_async import (
    Hooks,
    JobEvent,
    JobResult,
    JobTimeoutError,
    RunningHub,
    TaskCancelledError,
    TaskFailedError,
    TaskStatus,
)
from runninghub_async.otel import OpenTelemetryHooks
from runninghub_async.testing import FakeRunningHub

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
PARAMS = {"prompt": "a lantern at dusk", "resolution": "1k"}


async def _collect(job: Any) -> list[JobEvent]:
    return [event async for event in job.events()]


async def test_events_of_a_success_arrive_in_order_for_every_consumer(
    client: RunningHub,
) -> None:
    """Two consumers of one job see the same events, ending with SUCCESS."""
    job = await client.submit(T2I, PARAMS)
    seen: list[list[JobEvent]] = []

    async def consume() -> None:
        seen.append(await _collect(job))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        tg.start_soon(consume)
    assert seen[0] == seen[1]
    statuses = [e.status for e in seen[0]]
    assert statuses[-1] is TaskStatus.SUCCESS
    assert len(statuses) == len(set(statuses))
    assert all(e.at > 0 for e in seen[0])
    assert job.status is TaskStatus.SUCCESS


async def test_events_of_failure_and_cancel_end_with_their_status(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """FAILED and CANCEL are terminal events; wait() raises accordingly."""
    async with make_client(base_url=manual.base_url) as client:
        failing = await client.submit(T2I, PARAMS)
        cancelled = await client.submit(T2I, PARAMS)
        manual.fail(failing.task_id)
        assert await cancelled.cancel() is True
        failed_events = await _collect(failing)
        cancelled_events = await _collect(cancelled)
        with pytest.raises(TaskFailedError):
            await failing.wait()
        with pytest.raises(TaskCancelledError):
            await cancelled.wait()
    assert failed_events[-1].status is TaskStatus.FAILED
    assert cancelled_events[-1].status is TaskStatus.CANCEL


async def test_a_timeout_ends_the_events_without_a_terminal_one(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """The deadline ends the stream; wait() says why."""
    async with make_client(base_url=manual.base_url, job_timeout=0.3) as client:
        job = await client.submit(T2I, PARAMS)
        with anyio.fail_after(5):
            events = await _collect(job)
        with pytest.raises(JobTimeoutError):
            await job.wait()
    assert all(not e.status.is_terminal for e in events)


async def test_a_consumer_that_stops_early_changes_nothing(client: RunningHub) -> None:
    """Breaking out of events() leaves the job and other consumers alone."""
    job = await client.submit(T2I, PARAMS)
    async for _ in job.events():
        break
    result = await job.wait()
    assert result.task_id == job.task_id
    assert (await _collect(job))[-1].status is TaskStatus.SUCCESS


class Recording(Hooks):
    """Counts every hook call."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[Any, ...]]] = {}

    def _add(self, name: str, *args: Any) -> None:
        self.calls.setdefault(name, []).append(args)

    def submit(self, endpoint: str) -> None:
        self._add("submit", endpoint)

    def accepted(self, endpoint: str, task_id: str, seconds: float) -> None:
        self._add("accepted", task_id)

    def status(self, task_id: str, endpoint: str | None, status: TaskStatus) -> None:
        self._add("status", task_id, status)

    def query(self, endpoint: str | None) -> None:
        self._add("query", endpoint)

    def finished(
        self, task_id: str, endpoint: str | None, outcome: Any, seconds: float
    ) -> None:
        self._add("finished", task_id, type(outcome))


async def test_hooks_fire_once_per_event(make_client: ClientFactory, fake: FakeRunningHub) -> None:
    """Five jobs: five submits, five acceptances, five ends, one status call per event."""
    hooks = Recording()
    async with make_client(hooks=hooks) as client:
        jobs = [await client.submit(T2I, PARAMS) for _ in range(5)]
        for job in jobs:
            await job.wait()
        events = {job.task_id: [e.status for e in await _collect(job)] for job in jobs}
        queries = client.statistics().poller.queries_sent
    assert len(hooks.calls["submit"]) == 5
    assert sorted(a[0] for a in hooks.calls["accepted"]) == sorted(events)
    assert sorted(a[0] for a in hooks.calls["finished"]) == sorted(events)
    assert all(a[1] is JobResult for a in hooks.calls["finished"])
    for task_id, statuses in events.items():
        assert [a[1] for a in hooks.calls["status"] if a[0] == task_id] == statuses
    assert len(hooks.calls["query"]) == queries


async def test_a_raising_hook_never_disturbs_a_job(make_client: ClientFactory) -> None:
    """A hook that raises is logged and ignored."""

    class Broken(Hooks):
        def accepted(self, endpoint: str, task_id: str, seconds: float) -> None:
            raise RuntimeError("boom")

    async with make_client(hooks=Broken()) as client:
        assert (await client.run(T2I, PARAMS)).outputs


async def test_opentelemetry_hooks_record_spans_and_metrics(make_client: ClientFactory) -> None:
    """Three jobs: three ended spans, submits counted, nothing left in flight."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    hooks = OpenTelemetryHooks(meter_provider=meter_provider, tracer_provider=tracer_provider)
    async with make_client(hooks=hooks) as client:
        for _ in range(3):
            await client.run(T2I, PARAMS)
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["runninghub.job"] * 3
    data = reader.get_metrics_data()
    assert data is not None
    values: dict[str, int] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = list(metric.data.data_points)
                values[metric.name] = sum(int(getattr(p, "value", 0) or 0) for p in points)
    assert values["runninghub.submits"] == 3
    assert values["runninghub.jobs.in_flight"] == 0
    assert values["runninghub.queries"] >= 3
    tracer_provider.shutdown()
    meter_provider.shutdown()


async def test_a_jobs_span_is_a_child_of_its_callers_span(make_client: ClientFactory) -> None:
    """Each caller's context reaches its submit: the job span nests under the caller's span."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = tracer_provider.get_tracer("test")
    hooks = OpenTelemetryHooks(tracer_provider=tracer_provider)
    async with make_client(hooks=hooks) as client:

        async def caller(name: str) -> None:
            with tracer.start_as_current_span(name):
                await client.run(T2I, PARAMS)

        for i in range(3):  # one after another: a pooled task would keep the first's context
            await caller(f"caller-{i}")
        async with anyio.create_task_group() as tg:
            for i in range(3, 6):
                tg.start_soon(caller, f"caller-{i}")
    spans = exporter.get_finished_spans()
    callers = {s.context.span_id: s.name for s in spans if s.name.startswith("caller-")}
    jobs = [s for s in spans if s.name == "runninghub.job"]
    assert len(jobs) == 6
    parents = sorted(callers[s.parent.span_id] for s in jobs if s.parent is not None)
    assert parents == sorted(callers.values())
    tracer_provider.shutdown()


async def test_read_gives_the_bytes_download_writes(client: RunningHub, tmp_path: Path) -> None:
    """read() and stream() give exactly the file download() saves; to_image() decodes it."""
    result = await client.run(T2I, PARAMS)
    (path,) = await client.download(result, tmp_path)
    data = await client.read(result.outputs[0])
    streamed = b"".join([chunk async for chunk in client.stream(result.outputs[0])])
    image = await client.to_image(result.outputs[0])
    assert data == streamed == await anyio.Path(path).read_bytes()
    assert image.size[0] > 0
