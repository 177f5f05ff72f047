"""Running a handful of coroutines at a time, raising the first error itself (never a group)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio

__all__ = ["run_all"]


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
