"""The worker pool behind status checks: no task per check, nothing lost on close."""

from __future__ import annotations

import asyncio
import logging

import anyio
import pytest

from runninghub_async._concurrency import Workers

pytestmark = pytest.mark.anyio


async def test_items_run_in_a_bounded_pool_of_reused_tasks() -> None:
    """Many items need only as many tasks as ran at once; at most *keep* stay idle."""
    gates = [asyncio.get_running_loop().create_future() for _ in range(6)]
    ran: list[tuple[int, asyncio.Task[object] | None]] = []

    async def handle(i: int) -> None:
        await gates[i % 3]
        ran.append((i, asyncio.current_task()))

    workers: Workers[int] = Workers(handle, "test.worker", keep=2)
    for i in range(6):
        workers.put(i)
    for gate in gates[:3]:
        gate.set_result(None)
    await anyio.wait_all_tasks_blocked()
    assert sorted(i for i, _ in ran) == list(range(6))
    assert len({id(task) for _, task in ran}) <= 6
    names = [t.get_name() for t in asyncio.all_tasks()]
    assert names.count("test.worker") == 2  # the rest ended once idle
    # An idle worker takes the next item: no new task.
    before = {id(t) for t in asyncio.all_tasks()}
    workers.put(0)
    await anyio.wait_all_tasks_blocked()
    assert id(ran[-1][1]) in before
    assert await workers.aclose() == []
    assert "test.worker" not in [t.get_name() for t in asyncio.all_tasks()]


async def test_an_interrupt_cancels_one_item_and_the_worker_goes_on() -> None:
    started = asyncio.Event()
    outcomes: list[str] = []
    current: list[asyncio.Task[object] | None] = []

    async def handle(item: str) -> None:
        current.append(asyncio.current_task())
        if item == "stuck":
            started.set()
            try:
                await asyncio.get_running_loop().create_future()
            except asyncio.CancelledError:
                outcomes.append("stuck interrupted")
                raise
        outcomes.append(item)

    workers: Workers[str] = Workers(handle, "test.worker", keep=1)
    workers.put("stuck")
    await started.wait()
    task = current[0]
    assert task is not None
    workers.interrupt(task)
    await anyio.wait_all_tasks_blocked()
    workers.put("next")
    await anyio.wait_all_tasks_blocked()
    assert outcomes == ["stuck interrupted", "next"]
    assert current[1] is task  # the same worker handled the next item
    assert task.cancelling() == 0  # the interrupt was taken back
    await workers.aclose()


async def test_an_unexpected_error_is_logged_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[int] = []

    async def handle(i: int) -> None:
        if i == 0:
            raise RuntimeError("a bug")
        done.append(i)

    workers: Workers[int] = Workers(handle, "test.worker", keep=1)
    with caplog.at_level(logging.ERROR, logger="runninghub_async"):
        workers.put(0)
        workers.put(1)
        await anyio.wait_all_tasks_blocked()
    assert done == [1]
    assert "test.worker failed" in caplog.text
    await workers.aclose()


async def test_close_cancels_handled_items_and_returns_those_never_started() -> None:
    cancelled: list[int] = []
    started = asyncio.Event()

    async def handle(i: int) -> None:
        started.set()
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    workers: Workers[int] = Workers(handle, "test.worker", keep=1)
    workers.put(1)
    await started.wait()
    workers.put(2)
    workers.put(3)  # queued in the same iteration: no worker has taken them yet
    assert await workers.aclose() == [2, 3]
    assert cancelled == [1]
    assert "test.worker" not in [t.get_name() for t in asyncio.all_tasks()]


async def test_a_cancel_from_outside_still_ends_the_worker() -> None:
    """Only an interrupt is taken back: a plain cancel of a worker is not swallowed."""
    started = asyncio.Event()
    current: list[asyncio.Task[object] | None] = []

    async def handle(i: int) -> None:
        current.append(asyncio.current_task())
        started.set()
        await asyncio.get_running_loop().create_future()

    workers: Workers[int] = Workers(handle, "test.worker", keep=1)
    workers.put(1)
    await started.wait()
    task = current[0]
    assert task is not None
    workers.interrupt(task)
    task.cancel()  # someone else's cancel on top of the interrupt
    with pytest.raises(asyncio.CancelledError):
        await task
    await workers.aclose()
