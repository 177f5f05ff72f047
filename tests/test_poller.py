"""The shared poller: bounded query rate, cadence learned per endpoint, one loop for all."""

from __future__ import annotations

import math
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from runninghub_async import Hooks, PollPolicy, RunningHub, TaskCancelledError
from runninghub_async._schedule import Deadlines
from runninghub_async._tracked import Tracked
from runninghub_async.testing import FakeRunningHub

from .conftest import FAST_RETRY, ClientFactory

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"


def params(i: int) -> dict[str, str]:
    return {"prompt": f"p{i}", "resolution": "1k"}


class _QueryClock(Hooks):
    """Stamps every status check; sets *enough* once *target* checks were sent."""

    def __init__(self, target: int) -> None:
        self.stamps: list[float] = []
        self.target = target
        self.enough = anyio.Event()

    def query(self, endpoint: str | None) -> None:
        self.stamps.append(anyio.current_time())
        if len(self.stamps) >= self.target:
            self.enough.set()


async def test_query_rate_stays_under_the_poll_budget(manual: FakeRunningHub) -> None:
    """With max_rate R, 300 outstanding jobs never see more than R checks in any 1 s window."""
    rate = 50.0
    clock = _QueryClock(target=90)  # nearly two seconds of checks at the budget
    policy = PollPolicy(initial_delay=0.0, min_interval=0.01, max_interval=0.02, max_rate=rate)
    client = RunningHub(
        api_key=manual.api_key,
        base_url=manual.base_url,
        max_in_flight=300,
        requests_per_second=None,
        poll=policy,
        retry=FAST_RETRY,
        hooks=clock,
    )
    async with client:
        jobs = []
        async with anyio.create_task_group() as tg:
            for i in range(300):

                async def submit(i: int = i) -> None:
                    jobs.append(await client.submit(T2I, params(i)))

                tg.start_soon(submit)
        waiters = anyio.create_task_group()
        async with waiters:
            for job in jobs:
                waiters.start_soon(job.wait)
            with anyio.fail_after(10):
                await clock.enough.wait()
            waiters.cancel_scope.cancel()
    stamps = clock.stamps
    busiest = max(sum(1 for t in stamps[i:] if t < start + 1.0) for i, start in enumerate(stamps))
    # The poller's budget is strict (PollPolicy.max_rate): no burst on top of R.
    assert busiest <= rate
    assert busiest >= rate * 0.6  # and it did use the budget


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
            learned = live.poller._plan.model(T2I).quantile(0.5)
            untouched = live.poller._plan.model("rhart-video-s/text-to-video").quantile(0.5)
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
    """200 outstanding jobs cost one poller loop and a few check workers, not 200 tasks."""
    policy = PollPolicy(initial_delay=1.0, min_interval=1.0, max_concurrent=4)
    client = RunningHub(
        api_key=manual.api_key,
        base_url=manual.base_url,
        max_in_flight=200,
        requests_per_second=None,
        poll=policy,
        retry=FAST_RETRY,
        max_connections=8,
    )
    async with client:
        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(client.submit, T2I, params(i))
        await anyio.wait_all_tasks_blocked()
        assert client.statistics().outstanding == 200
        names = [t.name or "" for t in anyio.get_running_tasks()]
        ours = [name for name in names if name.startswith("runninghub_async.")]
        # One poller loop, the journal's writer and the check workers (at most
        # max_concurrent, kept for the next checks): no task per job.
        assert ours.count("runninghub_async._poller.Poller.run") == 1
        assert ours.count("runninghub_async._journaling.JournalWriter.run") == 1
        assert ours.count("runninghub_async._poller.Poller._check") <= 4
        assert len(ours) <= 2 + 4


async def test_a_check_that_raises_unexpectedly_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A query that raises a non-library error is logged and checked again, not dropped."""
    from runninghub_async._models import JobResult, TaskSnapshot, TaskStatus

    calls = 0

    async def query(task_id: str) -> TaskSnapshot:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in a wrapped query")
        return TaskSnapshot(task_id, TaskStatus.SUCCESS)

    tracked = await _one_job_on_a_poller(query)
    assert calls == 2
    assert isinstance(tracked.outcome, JobResult)
    assert "failed unexpectedly" in caplog.text


class _InFlight(Hooks):
    """The most checks in flight at once, as each query starts."""

    def __init__(self, client: list[RunningHub]) -> None:
        self._client = client
        self.most = 0

    def query(self, endpoint: str | None) -> None:
        flight = self._client[0].statistics().poller.queries_in_flight
        self.most = max(self.most, flight)


async def test_checks_waiting_for_a_place_go_as_soon_as_one_frees(
    make_client: ClientFactory,
) -> None:
    """max_concurrent=1 and twelve jobs due together: one check at a time, none left behind."""
    holder: list[RunningHub] = []
    hooks = _InFlight(holder)
    policy = PollPolicy(
        initial_delay=0.0, min_interval=0.01, max_interval=0.05, max_concurrent=1, jitter=0.0
    )
    async with make_client(poll=policy, max_in_flight=12, hooks=hooks) as client:
        holder.append(client)
        jobs = [await client.submit(T2I, params(i)) for i in range(12)]
        with anyio.fail_after(5):  # far below job_timeout: nobody waits for a deadline
            results = [await job.wait() for job in jobs]
    assert [r.task_id for r in results] == [j.task_id for j in jobs]
    assert hooks.most == 1


def _tracked(task_id: str, deadline: float) -> Tracked:
    return Tracked(
        task_id=task_id,
        endpoint=None,
        submitted_at=0.0,
        deadline=deadline,
        grace_until=0.0,
        submitted=True,
        slot=None,
    )


def test_deadlines_expire_in_order_even_when_the_clock_stepped_back() -> None:
    deadlines = Deadlines()
    for task_id, at in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("late-clock", 1.5)):
        deadlines.add(_tracked(task_id, at))
    assert deadlines.next_at() == 1.0
    assert [t.task_id for t in deadlines.expired(0.5, live=4)] == []
    assert [t.task_id for t in deadlines.expired(2.0, live=4)] == ["a", "late-clock", "b"]
    assert deadlines.next_at() == 3.0


def test_deadlines_skip_ended_jobs_and_drop_them_once_they_pile_up() -> None:
    deadlines = Deadlines()
    jobs = [_tracked(str(i), float(i)) for i in range(3000)]
    for tracked in jobs:
        deadlines.add(tracked)
    for tracked in jobs[:-1]:
        tracked.outcome = TaskCancelledError(tracked.task_id)
    # One job is live: the 2,999 ended entries are dropped, not kept until their deadline.
    assert deadlines.next_at() == 0.0
    assert [t.task_id for t in deadlines.expired(-1.0, live=1)] == []
    assert deadlines.next_at() == 2999.0
    assert [t.task_id for t in deadlines.expired(5000.0, live=1)] == ["2999"]
    assert deadlines.next_at() == math.inf


async def test_a_failure_recording_a_jobs_end_still_wakes_its_waiters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Costs, journal and hooks are told of an end first; if that fails, waiters still wake."""
    from runninghub_async._models import JobResult, TaskSnapshot, TaskStatus

    async def query(task_id: str) -> TaskSnapshot:
        return TaskSnapshot(task_id, TaskStatus.SUCCESS)

    def on_finished(tracked: Tracked, outcome: object) -> None:
        raise ArithmeticError("a broken bookkeeper")

    tracked = await _one_job_on_a_poller(query, on_finished=on_finished)
    assert isinstance(tracked.outcome, JobResult)
    assert "recording the end of task 1001 failed" in caplog.text


async def _one_job_on_a_poller(query: Any, **options: Any) -> Tracked:
    """Follow task 1001 on a bare `Poller` (no client) until it ends; never cancelled."""
    from runninghub_async._poller import Poller

    async def cancel(task_id: str) -> None:
        raise AssertionError("not cancelled")

    policy = PollPolicy(initial_delay=0.0, min_interval=0.01, max_interval=0.02)
    poller = Poller(query, policy, job_timeout=5.0, remote_cancel=cancel, **options)
    async with anyio.create_task_group() as tg:
        await tg.start(poller.run)
        tracked = poller.track("1001", endpoint=T2I, submitted=True)
        with anyio.fail_after(5):
            await tracked.ended()
        tg.cancel_scope.cancel()
    return tracked
