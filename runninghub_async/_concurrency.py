"""Concurrency helpers: a handful of coroutines at a time, and a set of owned per-job tasks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import anyio

__all__ = ["TaskSet", "run_all"]

log = logging.getLogger("runninghub_async")


class TaskSet:
    """Per-job tasks (a submit's POST, a status check) that their owner awaits before it goes.

    Plain asyncio tasks: a task group's bookkeeping per spawn costs more than the
    work of a check.  Nothing is fire-and-forget: ``aclose`` cancels what is left
    and waits for it, and a task that fails is logged (they catch what they expect).
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run *coro* in a task of this set."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    async def join(self) -> None:
        """Wait until every task of this set has ended (those spawned meanwhile too)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def aclose(self) -> None:
        """Cancel the tasks still running and wait for them (shielded)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.gather(*tasks, return_exceptions=True)


async def run_all(
    items: Sequence[int], job: Callable[[int], Awaitable[None]], *, limit: int
) -> None:
    """Run ``job(i)`` for every item, *limit* at a time; on the first error cancel
    the rest and raise that error itself (not an ExceptionGroup)."""
    queue = iter(items)
    failure: list[Exception] = []

    async def worker(scope: anyio.CancelScope) -> None:
        for item in queue:
            try:
                await job(item)
            except Exception as exc:
                failure.append(exc)
                scope.cancel()
                return

    async with anyio.create_task_group() as tg:
        for _ in range(min(limit, len(items))):
            tg.start_soon(worker, tg.cancel_scope)
    if failure:
        raise failure[0]
