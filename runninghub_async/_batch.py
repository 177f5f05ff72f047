"""``run_many``: one job per params, yielded in completion order, memory bounded by a window.

The params are pulled lazily: at most *window* items are taken from the input and
not yet handed back.  One failing item never stops the batch: every exception an
item meets (its submit, its wait, even a bug in its params) comes back as its
``error``; only local cancellation is never swallowed.  Nothing an item does can
raise into the client's task group.
"""

from __future__ import annotations

import contextlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from ._job import Job
from ._models import BatchItem

__all__ = ["Params", "run_batch"]

Params = Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]
SubmitOne = Callable[[int, Mapping[str, Any]], Awaitable[Job | None]]
"""Submits item *index* with its params: its `Job`, or None to skip it (already done)."""


@attrs.define(eq=False)
class _Feed:
    """What the producer and the consumer share."""

    error: BaseException | None = None


def check_params(params: object) -> Params:
    """*params* if it can be iterated (sync or async).

    Raises:
        TypeError: it cannot (``None``, a number, a single mapping).
    """
    if isinstance(params, Mapping) or not isinstance(params, Iterable | AsyncIterable):
        raise TypeError(
            "params must be an iterable (or async iterable) of mappings, "
            f"got {type(params).__name__}"
        )
    return params


async def _aiter(items: Params) -> AsyncIterator[Mapping[str, Any]]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
            await anyio.lowlevel.checkpoint()


async def run_batch(
    tg: anyio.abc.TaskGroup,
    submit: SubmitOne,
    params: Params,
    window: int,
) -> AsyncGenerator[BatchItem, None]:
    """Run ``await (await submit(i, p)).wait()`` for every *p*, *window* at a time.

    *submit* runs in tasks of *tg* (the client's group); an item it skips (None)
    is not yielded.
    """
    send, receive = anyio.create_memory_object_stream[BatchItem]()
    feed = _Feed()
    scope = anyio.CancelScope()
    tg.start_soon(_produce, submit, params, window, send, feed, scope)
    try:
        async with receive:
            async for item in receive:
                yield item
    finally:
        scope.cancel()
    if feed.error is not None:
        raise feed.error


async def _produce(
    submit: SubmitOne,
    params: Params,
    size: int,
    send: anyio.abc.ObjectSendStream[BatchItem],
    feed: _Feed,
    scope: anyio.CancelScope,
) -> None:
    with scope:
        async with send, anyio.create_task_group() as tg:
            window = anyio.Semaphore(size)
            try:
                index = 0
                async for item in _aiter(params):
                    await window.acquire()
                    tg.start_soon(_item, submit, index, item, send, window)
                    index += 1
            except Exception as exc:  # the caller's iterator failed: hand it back
                feed.error = exc


async def _item(
    submit: SubmitOne,
    index: int,
    params: Mapping[str, Any],
    send: anyio.abc.ObjectSendStream[BatchItem],
    window: anyio.Semaphore,
) -> None:
    task_id: str | None = None
    try:
        try:
            job = await submit(index, params)
            if job is None:
                return
            task_id = job.task_id
            item = BatchItem(index, params, result=await job.wait(), task_id=task_id)
        except Exception as exc:
            item = BatchItem(index, params, error=exc, task_id=task_id)
        # If the consumer stopped iterating, nobody wants the item.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await send.send(item)
    finally:
        window.release()
