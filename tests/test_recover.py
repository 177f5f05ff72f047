"""A client's journal: after a restart, recover() re-attaches every paid task, none paid twice."""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest

from runninghub_async import ClientClosedError, FileJournal, RunningHub, SubmitOutcomeUnknownError
from runninghub_async._journal import JournalEntry
from runninghub_async.redis import RedisJournal
from runninghub_async.testing import FakeRunningHub, Fault

from .conftest import ClientFactory
from .redis_support import RedisServer

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"


def params(n: int) -> dict[str, str]:
    return {"prompt": f"harbour {n}", "resolution": "1k"}


async def test_recover_reattaches_what_a_closed_client_left_running(
    manual: FakeRunningHub, make_client: ClientFactory, tmp_path: Path
) -> None:
    """Three tasks outstanding at close: the next client recovers all three, submits none."""
    path = tmp_path / "jobs.journal"
    async with make_client(base_url=manual.base_url, journal=FileJournal(path)) as client:
        jobs = [await client.submit(T2I, params(n)) for n in range(3)]
    for job in jobs:
        with pytest.raises(ClientClosedError):
            await job.wait()
    async with make_client(base_url=manual.base_url, journal=FileJournal(path)) as client:
        recovered = await client.recover()
        assert sorted(j.task_id for j in recovered) == sorted(j.task_id for j in jobs)
        assert client.statistics().limiter.in_flight == 3  # each holds a slot
        for job in recovered:
            manual.finish(job.task_id)
        with anyio.fail_after(5):
            results = [await job.wait() for job in recovered]
        assert all(r.outputs for r in results)
    assert manual.stats.accepted_tasks == 3
    async with FileJournal(path) as journal:
        assert await journal.outstanding() == []  # their ends were journaled


async def test_an_unknown_outcome_is_left_for_the_caller(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    """A submit whose answer was lost stays an intent: recover() does not resend it."""
    drop = Fault("drop_after_accept", route="submit", times=1)
    path = tmp_path / "jobs.journal"
    async with FakeRunningHub(duration=None, faults=[drop]) as fake:
        async with make_client(base_url=fake.base_url, journal=FileJournal(path)) as client:
            with pytest.raises(SubmitOutcomeUnknownError):
                await client.submit(T2I, params(0), key="item-0")
        async with make_client(base_url=fake.base_url, journal=FileJournal(path)) as client:
            assert await client.recover() == []
        async with FileJournal(path) as journal:
            (entry,) = await journal.outstanding()
        assert entry.key == "item-0"
        assert entry.task_id is None
        assert fake.stats.submit_requests == 1


async def test_recover_takes_over_only_what_no_live_worker_follows(
    manual: FakeRunningHub, make_client: ClientFactory, redis_server: RedisServer
) -> None:
    """The README's "every worker calls recover()": a worker that starts leaves a live worker's
    tasks alone (no second follower, no second slot), and takes them once that worker closed."""
    namespace = f"test-{uuid.uuid4().hex}"

    def worker() -> RunningHub:
        journal = RedisJournal.from_url(redis_server.url, namespace=namespace)
        return make_client(base_url=manual.base_url, journal=journal)

    async with worker() as second:
        async with worker() as first:
            assert await first.recover() == []
            jobs = [await first.submit(T2I, params(n)) for n in range(2)]
            assert await second.recover() == []
            assert second.statistics().limiter.in_flight == 0
            assert first.statistics().limiter.in_flight == 2
            manual.finish(jobs[0].task_id)
            with anyio.fail_after(5):
                await jobs[0].wait()
        # The first worker closed with one task still running: it is the second's now.
        (recovered,) = await second.recover()
        assert recovered.task_id == jobs[1].task_id
        assert second.statistics().limiter.in_flight == 1
        manual.finish(recovered.task_id)
        with anyio.fail_after(5):
            await recovered.wait()
    assert manual.stats.accepted_tasks == 2
    async with RedisJournal.from_url(redis_server.url, namespace=namespace) as journal:
        assert await journal.outstanding(include_live=True) == []  # both ends journaled


class _ReadEarlier(RedisJournal):
    """A journal whose outstanding() was read before another worker recovered (the race, made
    certain): what it lists is no longer free to take."""

    snapshot: list[JournalEntry]

    async def outstanding(self, *, include_live: bool = False) -> list[JournalEntry]:
        return self.snapshot


async def test_of_two_workers_recovering_at_once_one_takes_each_task(
    manual: FakeRunningHub, make_client: ClientFactory, redis_server: RedisServer
) -> None:
    """C read the closed worker's tasks, then B recovered them: C's recover() leaves them to B."""
    namespace = f"test-{uuid.uuid4().hex}"

    def worker(journal: RedisJournal) -> RunningHub:
        return make_client(base_url=manual.base_url, journal=journal)

    async with worker(RedisJournal.from_url(redis_server.url, namespace=namespace)) as first:
        jobs = [await first.submit(T2I, params(n)) for n in range(2)]
    journal = _ReadEarlier.from_url(redis_server.url, namespace=namespace)
    b_journal = RedisJournal.from_url(redis_server.url, namespace=namespace)
    async with worker(b_journal) as b, worker(journal) as c:
        journal.snapshot = await RedisJournal.outstanding(journal)
        assert len(journal.snapshot) == 2
        assert len(await b.recover()) == 2
        assert await c.recover() == []
        assert c.statistics().limiter.in_flight == 0
        for job in jobs:
            manual.finish(job.task_id)
