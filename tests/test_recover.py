"""A client's journal: after a restart, recover() re-attaches every paid task, none paid twice."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from runninghub_async import ClientClosedError, FileJournal, SubmitOutcomeUnknownError
from runninghub_async.testing import FakeRunningHub, Fault

from .conftest import ClientFactory

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
