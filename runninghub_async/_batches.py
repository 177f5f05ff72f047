"""``run_many`` and ``recover`` of `RunningHub`: batches, resumable through a journal.

A mixin so that the client facade stays a facade; the batch loop itself is
`_batch.run_batch`, the journal's bookkeeping `_journaling`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _batch
from ._errors import SubmitOutcomeUnknownError
from ._job import Job
from ._journal import Journal, JournalEntry
from ._journaling import resumable
from ._models import BatchItem
from ._prepare import endpoint_path
from ._pricing import CostBudget

if TYPE_CHECKING:
    from ._extras_models import Price
    from ._limiter import Limiter
    from ._live import Live
    from ._prepare import Preparer, Request
    from ._specs import ParamSpec
    from ._tracked import Tracked
    from ._uploads import LocalFile

__all__ = ["BatchMethods"]

log = logging.getLogger("runninghub_async")


class BatchMethods:
    """``run_many`` (resumable with a journal, bounded by a cost) and ``recover``."""

    if TYPE_CHECKING:
        _admission: asyncio.Semaphore | None
        _journal: Journal | None
        _limiter: Limiter
        _prepare: Preparer

        def _open(self) -> Live: ...

        async def submit(
            self,
            endpoint: str,
            params: Mapping[str, Any],
            *,
            webhook_url: str | None = None,
            key: str | None = None,
        ) -> Job: ...

        async def price(self, model: str, params: Mapping[str, Any]) -> Price: ...

        def _send(
            self, live: Live, request: Request, journal: Journal | None, key: str | None
        ) -> Awaitable[Tracked]: ...

        async def _upload_media(self, local: LocalFile, field: str, param: ParamSpec) -> str: ...

    async def run_many(
        self,
        endpoint: str,
        params: _batch.Params,
        *,
        window: int | None = None,
        journal: Journal | None = None,
        key: Callable[[Mapping[str, Any]], str] | None = None,
        resubmit_unknown: bool = False,
        max_cost: Decimal | float | str | None = None,
    ) -> AsyncGenerator[BatchItem, None]:
        """Run one job per params, yielding each as it ends, in completion order.

        *params* is pulled lazily: at most *window* items (default: the client's
        ``max_in_flight``) are taken from it and not yet handed back, so an
        iterator of a million params costs the memory of a window.  One failing
        item never stops the batch: it comes back with ``error`` set (a bad item's
        ``InvalidParametersError`` too).  Breaking out of the loop stops the batch
        (``aclose()`` it, or use ``contextlib.aclosing``, to stop it at once).

        With a *journal* (entered by the caller) the batch is resumable: each item
        is recorded under its key (its index, or ``key(params)``), and a run over
        the same input after a crash skips items that ended (they are not
        yielded), re-attaches those already accepted (nothing is paid twice), and
        yields an item whose submit had an unknown outcome with a
        `SubmitOutcomeUnknownError`, unless *resubmit_unknown*.

        With *max_cost* (in the account's currency), each item is priced first
        (``price()``, cached per distinct params) and the first item that would
        pass the budget comes back with a `BudgetExceededError`: nothing after it
        is submitted.

        Raises:
            ClientClosedError: the client is not open.
            TypeError: *params* is not an iterable.
            ValueError: *window* is not a positive int.
            Exception: whatever iterating *params* raised, after the items
                already running have been handed back.
        """
        live = self._open()
        size = window if window is not None else self._limiter.statistics().max_in_flight
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"window must be a positive int, got {window!r}")
        items = _batch.check_params(params)
        journal = journal if journal is not None else self._journal
        budget = CostBudget(self.price, max_cost) if max_cost is not None else None

        async def one(index: int, item: Mapping[str, Any]) -> Job | None:
            if journal is None:
                return await self.submit(endpoint, item)
            name = key(item) if key is not None else str(index)
            entry = await journal.get(name)
            action = resumable(entry)
            if action == "done":
                return None
            if action == "attach" and entry is not None and entry.task_id is not None:
                return await self._reattach(live, journal, entry)
            if action == "unknown" and not resubmit_unknown:
                raise SubmitOutcomeUnknownError(
                    endpoint, item, ValueError("an earlier run's submit had no answer")
                )
            async with self._admission or contextlib.nullcontext():
                prep = self._prepare
                path, spec = prep.check(endpoint, item)
                body = await prep.localise(spec, item, self._upload_media)
                request = prep.finish(path, body, item, None)
                tracked = await self._send(live, request, journal, name)
            return Job(tracked, live.poller, live.api, params=request.params)

        path = endpoint_path(self._prepare.catalog, endpoint)
        batch = _batch.run_batch(live.tg, one, items, size, budget=budget, endpoint=path)
        async for result in batch:
            yield result

    async def recover(self) -> list[Job]:
        """Re-attach every task the client's journal knows as accepted and not ended.

        Each re-attached job holds a slot until it ends (so with more of them than
        ``max_in_flight`` this waits for some to end) and is journaled like any
        other.  Intents without a task id (a submit whose outcome is unknown) are
        logged and left in the journal: only you can decide to pay twice.  With a
        shared journal (``RedisJournal``), tasks another live worker follows are
        left to it, and of workers recovering at once only one takes each task.

        Raises:
            ValueError: the client has no journal.
            ClientClosedError: the client is not open.
        """
        live = self._open()
        if self._journal is None:
            raise ValueError("recover() needs RunningHub(journal=...)")
        jobs: list[Job] = []
        claim_abandoned = getattr(self._journal, "claim_abandoned", None)
        for entry in await self._journal.outstanding():
            if entry.task_id is None:
                log.warning(
                    "journal entry %s (%s) has no task id: its submit's outcome is unknown",
                    entry.key,
                    entry.endpoint,
                )
                continue
            if claim_abandoned is not None and await claim_abandoned(entry.key) is None:
                continue  # another live worker took it since outstanding() was read
            claimed = claim_abandoned is not None
            jobs.append(await self._reattach(live, self._journal, entry, claimed=claimed))
        return jobs

    async def _reattach(
        self, live: Live, journal: Journal, entry: JournalEntry, *, claimed: bool = False
    ) -> Job:
        assert entry.task_id is not None
        claim = getattr(journal, "claim", None)
        if claim is not None and not claimed:
            await claim(entry.key)  # a shared journal: this process now owns the item
        existing = live.poller.get(entry.task_id)
        slot = None if existing is not None else await self._limiter.acquire_slot()
        tracked = live.poller.track(
            entry.task_id, endpoint=entry.endpoint, slot=slot, submitted=False
        )
        tracked.journal, tracked.key = journal, entry.key
        return Job(tracked, live.poller, live.api, params=None)
