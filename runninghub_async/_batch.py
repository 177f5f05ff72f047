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

from ._errors import SubmitOutcomeUnknownError
from ._job import Job
from ._models import BatchItem
from ._pricing import CostBudget

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
    *,
    budget: CostBudget | None = None,
    endpoint: str = "",
) -> AsyncGenerator[BatchItem, None]:
    """Run ``await (await submit(i, p)).wait()`` for every *p*, *window* at a time.

    *submit* runs in tasks of *tg* (the client's group); an item it skips (None)
    is not yielded.
    With a *budget*, each item is priced (as a call of *endpoint*) before it is
    submitted, in input order; the first that would pass the budget comes back
    with a `BudgetExceededError` and nothing more is submitted.  An item whose
    pricing failed comes back with that error, unsent.
    """
    send, receive = anyio.create_memory_object_stream[BatchItem]()
    feed = _Feed()
    scope = anyio.CancelScope()
    gate = _Gate(budget, endpoint) if budget is not None else None
    tg.start_soon(_produce, submit, params, window, send, feed, scope, gate)
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
    gate: _Gate | None = None,
) -> None:
    with scope:
        async with send, anyio.create_task_group() as tg:
            window = anyio.Semaphore(size)
            try:
                index = 0
                async for pulled in _aiter(params):
                    # A copy, taken now: a generator may reuse and change one dict, and
                    # this item is read later (after a journal lookup, a price).
                    item = dict(pulled) if isinstance(pulled, Mapping) else pulled
                    await window.acquire()
                    refusal = await gate.admit(item) if gate is not None else None
                    if refusal is not None:
                        tg.start_soon(_unsent, index, item, refusal, send, window)
                        if gate is not None and gate.closed:
                            break
                    else:
                        tg.start_soon(_item, submit, index, item, send, window, gate)
                    index += 1
            except anyio.get_cancelled_exc_class():
                raise
            except BaseException as exc:
                # The caller's iterator failed (even with SystemExit or KeyboardInterrupt):
                # hand it back to the caller's task, never to the client's task group.
                feed.error = exc


@attrs.define(eq=False)
class _Gate:
    """A `CostBudget` for one endpoint, as the producer asks it."""

    budget: CostBudget
    endpoint: str
    closed: bool = False

    async def admit(self, params: Mapping[str, Any]) -> Exception | None:
        """None when the item may be submitted, else why not (and maybe the budget closed)."""
        try:
            if await self.budget.reserve(self.endpoint, params):
                return None
        except Exception as exc:  # this item could not be priced: it alone fails
            return exc
        self.closed = True
        return self.budget.exceeded()

    def release(self, params: Mapping[str, Any]) -> None:
        self.budget.release(self.endpoint, params)


async def _unsent(
    index: int,
    params: Mapping[str, Any],
    error: Exception,
    send: anyio.abc.ObjectSendStream[BatchItem],
    window: anyio.Semaphore,
) -> None:
    try:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await send.send(BatchItem(index, params, error=error))
    finally:
        window.release()


async def _item(
    submit: SubmitOne,
    index: int,
    params: Mapping[str, Any],
    send: anyio.abc.ObjectSendStream[BatchItem],
    window: anyio.Semaphore,
    gate: _Gate | None = None,
) -> None:
    task_id: str | None = None
    try:
        try:
            job = await submit(index, params)
            if job is None:  # done in an earlier run
                if gate is not None:
                    gate.release(params)
                return
            task_id = job.task_id
            item = BatchItem(index, params, result=await job.wait(), task_id=task_id)
        except Exception as exc:
            if (
                gate is not None
                and task_id is None
                and not isinstance(exc, SubmitOutcomeUnknownError)
            ):
                gate.release(params)  # refused before acceptance: nothing was spent
            item = BatchItem(index, params, error=exc, task_id=task_id)
        # If the consumer stopped iterating, nobody wants the item.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await send.send(item)
    finally:
        window.release()
