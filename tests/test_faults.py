"""Faults on the wire: queries recover, a submit with an unknown outcome is never resent."""

from __future__ import annotations

import pytest

from runninghub_async import ConnectError, RunningHub, SubmitOutcomeUnknownError
from runninghub_async.testing import FakeRunningHub, Fault

from .conftest import FAST_POLL, FAST_RETRY, ClientFactory

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
PARAMS = {"prompt": "storm over the sea", "resolution": "2k"}


async def test_jobs_resolve_despite_502s_and_resets_on_queries(make_client: ClientFactory) -> None:
    """10% of queries answered 502 and 5% reset: every job still resolves correctly."""
    faults = [
        Fault("http_502", route="query", probability=0.10),
        Fault("reset", route="query", probability=0.05),
    ]
    async with FakeRunningHub(duration=(0.005, 0.03), faults=faults, seed=5) as fake:
        async with make_client(base_url=fake.base_url, max_in_flight=16) as client:
            params = [{"prompt": f"p{i}", "resolution": "1k"} for i in range(150)]
            items = [item async for item in client.run_many(T2I, params)]
        injected = fake.stats.faults_injected
    assert all(item.ok for item in items), [i.error for i in items if not i.ok][:3]
    assert len({item.task_id for item in items}) == 150
    for item in items:
        assert item.result is not None
        assert item.result.task_id == item.task_id
    assert injected.get("http_502", 0) > 0
    assert injected.get("reset", 0) > 0


async def test_submit_whose_answer_is_dropped_raises_and_is_not_resent(
    make_client: ClientFactory,
) -> None:
    """The task exists exactly once and the caller gets SubmitOutcomeUnknownError."""
    drop = Fault("drop_after_accept", route="submit", times=1)
    async with FakeRunningHub(duration=None, faults=[drop]) as fake:
        async with make_client(base_url=fake.base_url) as client:
            with pytest.raises(SubmitOutcomeUnknownError) as caught:
                await client.submit(T2I, PARAMS)
            assert client.statistics().limiter.in_flight == 0
        assert fake.stats.submit_requests == 1
        assert fake.stats.accepted_tasks == 1
        assert len(fake.tasks) == 1
    assert caught.value.endpoint == T2I
    assert caught.value.params == PARAMS


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_503", "reset", "malformed_json"])
async def test_ambiguous_submit_failures_are_never_retried(
    kind: str, make_client: ClientFactory
) -> None:
    """5xx, a reset or a garbled answer after sending: outcome unknown, one request only."""
    async with FakeRunningHub(duration=None, faults=[Fault(kind, route="submit", times=1)]) as fake:
        async with make_client(base_url=fake.base_url) as client:
            with pytest.raises(SubmitOutcomeUnknownError):
                await client.submit(T2I, PARAMS)
        # One request in all; a garbled answer may follow an accepted task, never two.
        assert fake.stats.requests_total == 1
        assert fake.stats.accepted_tasks <= 1


async def test_query_failures_are_retried_by_query(make_client: ClientFactory) -> None:
    """client.query() retries a transient 503 and returns the snapshot."""
    async with FakeRunningHub(duration=None) as fake:
        async with make_client(base_url=fake.base_url) as client:
            job = await client.submit(T2I, PARAMS)
            fake.add_fault(Fault("http_503", route="query", times=2))
            snapshot = await client.query(job.task_id)
            assert snapshot.task_id == job.task_id
            assert snapshot.status.value in ("QUEUED", "RUNNING")


async def test_refused_connection_is_retried_then_raised() -> None:
    """Nothing listening: the submit was provably never sent, so it is retried, then raised."""
    async with FakeRunningHub() as fake:
        url = fake.base_url
    client = RunningHub(api_key="k", base_url=url, poll=FAST_POLL, retry=FAST_RETRY)
    async with client:
        with pytest.raises(ConnectError):
            await client.submit(T2I, PARAMS)
    assert client.statistics().submits_sent == FAST_RETRY.attempts
