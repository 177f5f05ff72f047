"""The shared poller: bounded query rate, cadence learned per endpoint, one loop for all."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from runninghub_async import PollPolicy, RunningHub
from runninghub_async.testing import FakeRunningHub

from .conftest import FAST_RETRY, ClientFactory

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"


def params(i: int) -> dict[str, str]:
    return {"prompt": f"p{i}", "resolution": "1k"}


async def test_query_rate_stays_under_the_poll_budget(manual: FakeRunningHub) -> None:
    """With max_rate R, 300 outstanding jobs are checked at most about R times a second."""
    rate = 50.0
    policy = PollPolicy(initial_delay=0.0, min_interval=0.01, max_interval=0.02, max_rate=rate)
    client = RunningHub(
        api_key=manual.api_key,
        base_url=manual.base_url,
        max_in_flight=300,
        requests_per_second=None,
        poll=policy,
        retry=FAST_RETRY,
    )
    async with client:
        jobs = []
        async with anyio.create_task_group() as tg:
            for i in range(300):

                async def submit(i: int = i) -> None:
                    jobs.append(await client.submit(T2I, params(i)))

                tg.start_soon(submit)
        before = manual.stats.queries
        start = anyio.current_time()
        waiters = anyio.create_task_group()
        async with waiters:
            for job in jobs:
                waiters.start_soon(job.wait)
            await anyio.sleep(0.6)
            elapsed = anyio.current_time() - start
            sent = manual.stats.queries - before
            waiters.cancel_scope.cancel()
    # A token bucket allows its burst (a quarter second's worth) on top of the rate.
    assert sent <= rate * elapsed + rate / 4 + 1
    assert sent >= 5  # and it did poll


async def test_cadence_is_learned_per_endpoint(make_client: ClientFactory) -> None:
    """Jobs of an endpoint teach the poller their duration; other endpoints keep the prior."""
    policy = PollPolicy(
        typical_duration=0.02, target_delay=0.02, min_interval=0.01, max_interval=0.2, jitter=0.0
    )
    async with FakeRunningHub(duration=0.2, seed=4) as fake:
        async with make_client(base_url=fake.base_url, poll=policy, max_in_flight=5) as client:
            items = [i async for i in client.run_many(T2I, [params(i) for i in range(10)])]
            live = client._live
            assert live is not None
            learned = live.poller._model(T2I).quantile(0.5)
            untouched = live.poller._model("rhart-video-s/text-to-video").quantile(0.5)
    assert all(i.ok for i in items)
    assert 0.17 < learned < 0.26, learned  # the truth is 0.2 s; the prior said 0.02 s
    assert untouched == pytest.approx(0.02, rel=0.05)


async def test_auto_max_in_flight_reads_the_account_limit(make_client: ClientFactory) -> None:
    """max_in_flight="auto" takes concurrentLimit from /openapi/v2/queue/status."""
    async with FakeRunningHub(concurrency_limit=3) as fake:
        async with make_client(base_url=fake.base_url, max_in_flight="auto") as client:
            assert client.statistics().limiter.max_in_flight == 3
            status = await client.queue_status()
    assert status.concurrent_limit == 3


async def test_unwatched_jobs_are_checked_rarely(manual: FakeRunningHub) -> None:
    """A job nobody waits on is checked at max_interval until a waiter arrives."""
    policy = PollPolicy(
        initial_delay=0.0,
        typical_duration=0.05,
        target_delay=0.01,
        min_interval=0.01,
        max_interval=5.0,
        jitter=0.0,
    )
    client = RunningHub(
        api_key=manual.api_key, base_url=manual.base_url, poll=policy, retry=FAST_RETRY
    )
    async with client:
        job = await client.submit(T2I, params(0))
        await manual.wait_for(lambda f: f.stats.queries >= 1, timeout=5)
        tracked = job._tracked
        while tracked.querying or tracked.last_pending_at is None:  # the answer is being read
            await anyio.lowlevel.checkpoint()
        assert tracked.due - anyio.current_time() > 4.0  # the next check is max_interval away
        assert manual.stats.queries == 1
        manual.finish(job.task_id)
        with anyio.fail_after(2):
            result = await job.wait()  # a waiter brings it back to the normal cadence
    assert result.task_id == job.task_id


async def test_one_poller_task_for_many_jobs(manual: FakeRunningHub) -> None:
    """200 outstanding jobs cost one poller loop, not 200 tasks."""
    client = RunningHub(
        api_key=manual.api_key,
        base_url=manual.base_url,
        max_in_flight=200,
        requests_per_second=None,
        poll=PollPolicy(initial_delay=1.0, min_interval=1.0),
        retry=FAST_RETRY,
    )
    async with client:
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(client.submit, T2I, params(i))
        await anyio.wait_all_tasks_blocked()
        assert client.statistics().outstanding == 200
        names = [t.name or "" for t in anyio.get_running_tasks()]
        ours = [name for name in names if name.startswith("runninghub_async.")]
        # One poller loop and the journal's writer, however many jobs: no task per job.
        assert sorted(ours) == [
            "runninghub_async._journaling.JournalWriter.run",
            "runninghub_async._poller.Poller.run",
        ]
