"""Deadlines, cancellation and closing: a job belongs to the client, not to its waiters."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from runninghub_async import (
    ClientClosedError,
    Hooks,
    JobTimeoutError,
    RunningHub,
    TaskCancelledError,
    TaskStatus,
)
from runninghub_async.testing import FakeRunningHub, Fault

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
PARAMS = {"prompt": "a quiet harbour", "resolution": "1k"}


class Tracking(Hooks):
    """Sets `tracked` when the client starts following a job (its first status)."""

    def __init__(self) -> None:
        self.tracked = anyio.Event()

    def status(self, task_id: str, endpoint: str | None, status: TaskStatus) -> None:
        self.tracked.set()


async def test_job_timeout_ends_the_wait_frees_the_slot_and_cancels_remotely(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """Past job_timeout the wait raises JobTimeoutError(task_id); the task is cancelled."""
    async with make_client(base_url=manual.base_url, job_timeout=0.3) as client:
        job = await client.submit(T2I, PARAMS)
        with anyio.fail_after(5):
            with pytest.raises(JobTimeoutError) as caught:
                await job.wait()
        assert caught.value.task_id == job.task_id
        stats = client.statistics()
        assert stats.outstanding == 0
        assert stats.limiter.in_flight == 0
        await manual.wait_for(lambda f: f.tasks[job.task_id].status == "CANCEL", timeout=5)
        with pytest.raises(JobTimeoutError):
            await job.wait()  # the outcome stays
    assert manual.stats.cancels == 1


async def test_cancelled_waiter_leaves_the_job_running(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """Cancelling a wait cancels only that wait; the slot is freed when the task ends."""
    async with make_client(base_url=manual.base_url) as client:
        job = await client.submit(T2I, PARAMS)
        with anyio.move_on_after(0.05):
            await job.wait()
        assert not job.done()
        assert client.statistics().limiter.in_flight == 1
        assert client.statistics().outstanding == 1

        other = anyio.Event()

        async def second_waiter() -> None:
            result = await job.wait()
            assert result.task_id == job.task_id
            other.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(second_waiter)
            await anyio.wait_all_tasks_blocked()
            manual.finish(job.task_id)
        assert other.is_set()
        result = await job.wait()  # a later wait gets the result at once
        assert result.task_id == job.task_id
        assert client.statistics().limiter.in_flight == 0


async def test_one_cancelled_waiter_does_not_disturb_the_others(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """Of two waiters on one job, cancelling the first leaves the second waiting."""
    async with make_client(base_url=manual.base_url) as client:
        job = await client.submit(T2I, PARAMS)
        results = []

        async def waiter() -> None:
            results.append(await job.wait())

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            doomed = anyio.CancelScope()

            async def cancelled_waiter() -> None:
                with doomed:
                    await job.wait()

            tg.start_soon(cancelled_waiter)
            await anyio.wait_all_tasks_blocked()
            doomed.cancel()
            await anyio.wait_all_tasks_blocked()
            manual.finish(job.task_id)
        assert doomed.cancelled_caught
        assert len(results) == 1


async def test_cancelled_waits_leave_nothing_behind(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """A thousand waits given up on one long job hold nothing; the next wait still ends."""
    async with make_client(base_url=manual.base_url) as client:
        job = await client.submit(T2I, PARAMS)
        for _ in range(1000):
            with anyio.move_on_after(0):
                await job.wait()
        assert job._tracked._enders == []  # nothing kept per abandoned wait
        manual.finish(job.task_id)
        with anyio.fail_after(5):
            result = await job.wait()
    assert result.task_id == job.task_id


async def test_closing_the_client_fails_outstanding_waiters(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """Leaving `async with` ends every remaining wait with ClientClosedError naming the task."""
    errors: list[BaseException] = []
    async with anyio.create_task_group() as outer:
        async with make_client(base_url=manual.base_url) as client:
            job = await client.submit(T2I, PARAMS)

            async def waiter() -> None:
                try:
                    await job.wait()
                except ClientClosedError as exc:
                    errors.append(exc)

            outer.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
    assert len(errors) == 1
    assert isinstance(errors[0], ClientClosedError)
    assert job.task_id in errors[0].task_ids
    assert job.task_id in str(errors[0])


async def test_cancelling_a_submit_on_the_wire_keeps_the_job(make_client: ClientFactory) -> None:
    """A submit cancelled while its POST is in flight still ends up tracked, never lost."""
    slow = Fault("slow", route="submit", delay=0.3, times=1)
    hooks = Tracking()
    async with FakeRunningHub(duration=None, faults=[slow]) as fake:
        async with make_client(base_url=fake.base_url, hooks=hooks) as client:
            with anyio.move_on_after(0.05) as scope:
                await client.submit(T2I, PARAMS)
            assert scope.cancelled_caught
            with anyio.fail_after(5):
                await hooks.tracked.wait()
            assert client.statistics().outstanding == 1
            task_id = next(iter(fake.tasks))
            job = client.attach(task_id)
            fake.finish(task_id)
            assert (await job.wait()).task_id == task_id
            assert client.statistics().limiter.in_flight == 0


async def test_remote_cancel_of_a_running_job(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """job.cancel() cancels on RunningHub; waiters get TaskCancelledError; the slot frees."""
    async with make_client(base_url=manual.base_url) as client:
        job = await client.submit(T2I, PARAMS)
        assert await job.cancel() is True
        with pytest.raises(TaskCancelledError):
            await job.wait()
        assert manual.tasks[job.task_id].status == "CANCEL"
        assert client.statistics().limiter.in_flight == 0


async def test_cancel_of_a_finished_job_reconciles(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """Cancelling a job that already ended keeps its real outcome."""
    async with make_client(base_url=manual.base_url) as client:
        job = await client.submit(T2I, PARAMS)
        manual.finish(job.task_id)
        assert await job.cancel() is False
        result = await job.wait()
        assert result.task_id == job.task_id


async def test_concurrency_held_elsewhere_is_waited_out(make_client: ClientFactory) -> None:
    """With the account full because of another client, 421s stay inside until room frees."""
    async with FakeRunningHub(duration=None, concurrency_limit=1) as fake:
        async with (
            make_client(base_url=fake.base_url) as first,
            make_client(base_url=fake.base_url) as second,
        ):
            holder = await first.submit(T2I, PARAMS)
            async with anyio.create_task_group() as tg:
                tg.start_soon(second.run, T2I, PARAMS)
                await fake.wait_for(lambda f: f.stats.rejections.get("421", 0) >= 2, timeout=5)
                fake.finish(holder.task_id)
                await fake.wait_for(lambda f: f.stats.accepted_tasks == 2, timeout=5)
                fake.finish(next(t for t in fake.tasks if t != holder.task_id))
            assert second.statistics().limiter.rejections_absorbed >= 2


async def test_client_close_leaves_no_task_running(make_client: ClientFactory) -> None:
    """After `async with`, the client's tasks are gone and its sessions closed."""
    async with FakeRunningHub(duration=None) as fake:
        client: RunningHub = make_client(base_url=fake.base_url)
        outside = {task.id for task in anyio.get_running_tasks()}
        async with client:
            await client.submit(T2I, PARAMS)
            inside = {task.name for task in anyio.get_running_tasks()}
            assert "runninghub_async._poller.Poller.run" in inside
        after = {task.id for task in anyio.get_running_tasks()}
    assert after == outside


async def test_bare_task_cancel_during_a_submit_keeps_the_job(make_client: ClientFactory) -> None:
    """A submit whose asyncio task is cancelled mid-POST is still followed by the client."""
    import asyncio

    slow = Fault("slow", route="submit", delay=0.2, times=1)
    hooks = Tracking()
    async with FakeRunningHub(duration=None, faults=[slow]) as fake:
        async with make_client(base_url=fake.base_url, hooks=hooks) as client:
            task = asyncio.get_running_loop().create_task(client.submit(T2I, PARAMS))
            await fake.wait_for(lambda f: f.stats.requests_total >= 1, timeout=5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            with anyio.fail_after(5):
                await hooks.tracked.wait()
            assert client.statistics().outstanding == 1
            assert client.statistics().limiter.in_flight == 1


async def test_errors_raised_inside_the_client_block_are_not_wrapped(
    make_client: ClientFactory,
) -> None:
    """A caller's exception leaves `async with RunningHub()` as itself, not an ExceptionGroup."""
    with pytest.raises(KeyError, match="mine"):
        async with make_client():
            raise KeyError("mine")


async def test_a_journaled_submit_writes_its_intent_only_once_it_may_be_sent(
    make_client: ClientFactory, tmp_path: Any
) -> None:
    """Submits waiting for the request budget have no intent yet: after a crash there,
    ``recover()`` would otherwise see unknown outcomes for submits that never left."""
    from runninghub_async import FileJournal

    journal = FileJournal(tmp_path / "journal.jsonl")
    async with make_client(requests_per_second=0.2, journal=journal) as client:
        async with anyio.create_task_group() as tg:
            for i in range(4):
                tg.start_soon(client.submit, T2I, {**PARAMS, "prompt": f"harbour {i}"})
            with anyio.fail_after(5):
                while client.statistics().submits_accepted < 1:
                    await anyio.lowlevel.checkpoint()
            # The first went out; the others wait for the budget (one request per 5 s).
            unanswered = [e for e in await journal.outstanding() if e.task_id is None]
            assert len(unanswered) <= 1  # at most one more, already past the budget
            tg.cancel_scope.cancel()
