"""Concurrency helpers: a handful of coroutines at a time, owned tasks, and workers."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

import anyio

__all__ = ["TaskSet", "Workers", "run_all"]

log = logging.getLogger("runninghub_async")
T = TypeVar("T")


class TaskSet:
    """Tasks their owner awaits before it goes: one per submit's POST.

    A POST runs in a task of its own, made in its caller's task: it carries the
    caller's context (a trace span, a request id for logging) that a pooled
    worker would not.  Nothing is fire-and-forget: ``aclose`` cancels what is
    left and waits for it, and a task that fails is logged (they catch what they
    expect).
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


class Workers(Generic[T]):
    """Long-lived tasks that run ``handler(item)`` for each queued item: the status checks.

    A task per check costs more than the bookkeeping it carries (creating and
    scheduling it, the loop's weak set of tasks, a done callback); a worker takes
    the next item as soon as it ends one, and at most *keep* workers wait idle for
    more.  A worker runs in the context of whoever first needed it: only for work
    that belongs to its owner (the poller), never a caller's.  Nothing is
    fire-and-forget: ``aclose`` cancels the workers, waits for them and hands back
    the items never started.

    The handler catches what it expects; anything else is logged and the worker
    goes on.  ``interrupt(task)`` cancels only the item that worker is handling.
    """

    def __init__(
        self, handler: Callable[[T], Coroutine[Any, Any, None]], name: str, *, keep: int
    ) -> None:
        self._handler = handler
        self._name = name
        self._keep = max(1, keep)
        self._queue: collections.deque[T] = collections.deque()
        self._idle: list[asyncio.Future[None]] = []
        self._workers: set[asyncio.Task[None]] = set()
        self._interrupted: set[asyncio.Task[None]] = set()

    def put(self, item: T) -> None:
        """Handle *item* in a worker (an idle one, else a new one)."""
        self._queue.append(item)
        while self._idle:
            waiter = self._idle.pop()
            if not waiter.done():
                waiter.set_result(None)
                return
        task = asyncio.get_running_loop().create_task(self._work(), name=self._name)
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    def interrupt(self, task: asyncio.Task[Any]) -> None:
        """Cancel the item worker *task* is handling; the worker itself goes on."""
        if task in self._workers and task not in self._interrupted:
            self._interrupted.add(task)
            task.cancel()

    async def _work(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        queue = self._queue
        while True:
            while queue:
                item = queue.popleft()
                try:
                    await self._handler(item)
                except asyncio.CancelledError:
                    # Ours (an interrupt) is taken back; any other cancel ends the worker.
                    if task not in self._interrupted or task.uncancel() > 0:
                        raise
                except Exception:
                    log.exception("%s failed", self._name)
                finally:
                    if self._interrupted:
                        self._interrupted.discard(task)
            if len(self._idle) >= self._keep:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._idle.append(waiter)
            await waiter  # a cancel (aclose) leaves it done: `put` skips done waiters

    async def aclose(self) -> list[T]:
        """Cancel every worker, wait for them (shielded); the items never started."""
        workers = list(self._workers)
        for task in workers:
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.gather(*workers, return_exceptions=True)
        left = list(self._queue)
        self._queue.clear()
        return left


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
