"""End-to-end behaviour of RunningHub against the fake server over real HTTP."""

from __future__ import annotations

import anyio
import pytest

from runninghub_async import (
    AuthenticationError,
    ClientClosedError,
    InvalidParametersError,
    RunningHub,
    TaskFailedError,
    TaskNotFoundError,
    TaskStatus,
)
from runninghub_async.testing import FakeRunningHub

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
PARAMS = {"prompt": "a lighthouse at dusk", "resolution": "1k", "aspectRatio": "16:9"}


async def test_run_returns_the_result_of_a_successful_job(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """run() submits once and returns SUCCESS with the fake's output URL and usage."""
    result = await client.run(T2I, PARAMS)
    assert result.status is TaskStatus.SUCCESS
    assert len(result.task_id) == 19
    assert result.task_id.isdigit()
    assert result.endpoint == T2I
    assert result.outputs[0].url is not None
    assert result.outputs[0].url.startswith(fake.base_url)
    assert result.outputs[0].output_type == "png"
    assert result.usage is not None
    assert fake.stats.submit_requests == 1
    assert fake.tasks[result.task_id].params == PARAMS


async def test_submit_accepts_a_documented_name(client: RunningHub, fake: FakeRunningHub) -> None:
    """The documented name of an endpoint is sent to its path."""
    job = await client.submit("nano-banana-pro/text-to-image-channel-low-price", PARAMS)
    assert job.endpoint == T2I
    assert fake.tasks[job.task_id].endpoint == T2I
    await job.wait()


async def test_invalid_params_raise_before_anything_is_sent(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """A catalogued endpoint's schema is checked locally; nothing reaches the server."""
    with pytest.raises(InvalidParametersError) as caught:
        await client.submit(T2I, {"prompt": "x", "resolution": "3k"})
    assert caught.value.field == "resolution"
    assert caught.value.value == "3k"
    assert "1k, 2k, 4k" in str(caught.value)
    assert fake.stats.submit_requests == 0


async def test_failed_task_raises_task_failed_error(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """A task that ends FAILED raises TaskFailedError with code, message and reason."""
    async with make_client(base_url=manual.base_url) as client:
        job = await client.submit(T2I, PARAMS)
        manual.fail(job.task_id, code="1501")
        with pytest.raises(TaskFailedError) as caught:
            await job.wait()
    error = caught.value
    assert error.task_id == job.task_id
    assert error.code == "1501"
    assert error.message
    assert error.failed_reason is not None
    assert error.failed_reason.exception_message


async def test_unknown_task_id_raises_task_not_found(client: RunningHub) -> None:
    """Attaching to a task RunningHub does not know ends in TaskNotFoundError."""
    job = client.attach("1234567890123456789")
    with pytest.raises(TaskNotFoundError) as caught:
        await job.wait()
    assert caught.value.code == "1004"
    assert client.statistics().outstanding == 0


async def test_query_of_unknown_task_raises(client: RunningHub) -> None:
    """query() maps the 1004 body to TaskNotFoundError."""
    with pytest.raises(TaskNotFoundError):
        await client.query("1234567890123456789")


async def test_bad_key_raises_authentication_error(
    make_client: ClientFactory, fake: FakeRunningHub
) -> None:
    """An unknown key is refused with AuthenticationError, and never retried."""
    async with make_client(api_key="not-a-key") as client:
        with pytest.raises(AuthenticationError):
            await client.submit(T2I, PARAMS)
    assert fake.stats.accepted_tasks == 0


def test_missing_key_is_refused_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key anywhere, the client says how to give one."""
    monkeypatch.delenv("RUNNINGHUB_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="RUNNINGHUB_API_KEY"):
        RunningHub()


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """RUNNINGHUB_API_KEY and RUNNINGHUB_BASE_URL are the defaults."""
    monkeypatch.setenv("RUNNINGHUB_API_KEY", "env-key")
    monkeypatch.setenv("RUNNINGHUB_BASE_URL", "http://127.0.0.1:9/")
    client = RunningHub()
    assert client.base_url == "http://127.0.0.1:9"
    assert "env-key" not in repr(client)


async def test_attach_follows_a_task_submitted_by_another_client(
    make_client: ClientFactory,
) -> None:
    """A second client attaches to a task id and gets the same result."""
    async with make_client() as first, make_client() as second:
        job = await first.submit(T2I, PARAMS)
        attached = second.attach(job.task_id)
        theirs, ours = await attached.wait(), await job.wait()
    assert theirs.task_id == ours.task_id
    assert theirs.outputs == ours.outputs


async def test_many_waiters_share_one_job(client: RunningHub, fake: FakeRunningHub) -> None:
    """Several coroutines awaiting one job all get the same result from one task."""
    job = await client.submit(T2I, PARAMS)
    results = []

    async def waiter() -> None:
        results.append(await job.wait())

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(waiter)
    assert len({r.task_id for r in results}) == 1
    assert len(results) == 5
    assert fake.stats.accepted_tasks == 1


async def test_client_refuses_reentry_and_use_when_closed(make_client: ClientFactory) -> None:
    """A client opens once; calls outside `async with` raise ClientClosedError."""
    client = make_client()
    with pytest.raises(ClientClosedError, match="not open"):
        await client.submit(T2I, PARAMS)
    async with client:
        pass
    with pytest.raises(RuntimeError, match="only once"):
        async with client:
            pass
    with pytest.raises(ClientClosedError, match="closed"):
        client.attach("1234567890123456789")


async def test_submit_returning_success_resolves_at_once(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """statistics() reflects submits, accepted jobs and queries."""
    await client.run(T2I, PARAMS)
    stats = client.statistics()
    assert stats.submits_sent == 1
    assert stats.submits_accepted == 1
    assert stats.outstanding == 0
    assert stats.limiter.in_flight == 0
    assert stats.poller.queries_sent == fake.stats.queries
    assert stats.requests_sent == fake.stats.submit_requests + fake.stats.queries
