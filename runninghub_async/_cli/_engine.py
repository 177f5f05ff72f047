"""The batch engine: a window of items, each submitted (or re-attached), awaited and downloaded.

Each item's submit goes through the client's journal (the library's `Journal`:
``FileJournal`` beside the output, or a ``RedisJournal`` shared by workers): the
intent before the POST, the task id right after acceptance, the end when the job
ends.  What a re-run does with an item follows from that record and from the
files already in the output directory (`_plan.plan`); what each item came to
is written down in a `Ledger`.

``run_many`` is not used: a CLI batch mixes models line by line, prices items
for ``--max-cost`` across models, reports an earlier run's failures instead of
skipping them, and needs each item's outcome (files, manifest line) as it
settles; so each item runs its own ``submit`` + ``wait`` + ``download`` in one
task group, at most ``window`` at once, with items pulled lazily from their source.

Stopping (Ctrl-C) has two steps.  The first stops reading items and cancels every
wait and download at once, but lets each submit already under way finish and
journal its task id (for up to ``grace`` seconds).  The second Ctrl-C, or the end
of the grace, cancels those too.  If every one of them was still waiting for a
free slot inside the client (so none was on the wire), each is journaled as
``REJECTED`` (never accepted) and a re-run submits it; otherwise an intent may
stay in the journal, and a re-run reports it as of unknown outcome instead of
paying twice.  (A POST already on the wire is awaited by the client itself,
which journals its task id even when its caller was cancelled.)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping

import anyio
import anyio.lowlevel

from .. import CostBudget, Job, JobResult, RunningHub, RunningHubError
from .._journal import Journal, JournalEntry
from .._journaling import end_status
from .._limiter import Limiter, Slot
from ._inputs import Item
from ._ledger import BUDGET_ERROR, Failure, Ledger
from ._plan import FINAL_STATUSES, Action, list_outputs, plan
from ._progress import Tracker
from ._stop import Stop

# Planning and the records live in `_plan` and `_ledger`; their names stay
# importable from here, where the journal tests look for them.
__all__ = ["FINAL_STATUSES", "Action", "Engine", "Failure", "Settled", "list_outputs", "plan"]

log = logging.getLogger("runninghub_async")

# What a failed item may fail with without stopping the batch.
_ITEM_ERRORS = (RunningHubError, OSError, ValueError, TypeError)

Settled = Callable[[Item, Mapping[str, object], "Failure | None", bool], Awaitable[None]]
"""Called once an item settled: its manifest record, its failure, whether it was skipped."""


class Engine:
    """Runs items through submit (or attach), wait and download, recording each step.

    Args:
        client: an open client; its journal (if any) records every submit.
        journal: the client's journal (None: nothing is resumed, as in the demo).
        tracker: counts for the progress display.
        out_dir: where the files go.
        window: items in progress at once (memory and in-flight bound).
        stop: the user's requests to stop.
        note: prints a message (through the progress display).
        on_disk: output files already present, by task id.
        resubmit_unknown: see `plan`.
        retry_failed: see `plan`.
        grace: seconds submits under way may take to finish after the first Ctrl-C.
        budget: prices each item before its submit; once an item would pass the
            budget, it and every later item are not submitted (``max_cost``).
        slots: the client's limiter: a re-attached task then holds a slot until
            it ends, like a submitted one (workers sharing a key need this).
        settled: awaited once per item that settled (not for items a stop cut short).
    """

    def __init__(
        self,
        client: RunningHub,
        journal: Journal | None,
        tracker: Tracker,
        out_dir: str | os.PathLike[str],
        *,
        window: int,
        stop: Stop,
        note: Callable[[str], None],
        on_disk: Mapping[str, tuple[str, ...]] | None = None,
        resubmit_unknown: bool = False,
        retry_failed: bool = False,
        grace: float = 10.0,
        budget: CostBudget | None = None,
        slots: Limiter | None = None,
        settled: Settled | None = None,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window!r}")
        self._client = client
        self._journal = journal
        self._tracker = tracker
        self._out_dir = os.fspath(out_dir)
        self._window = anyio.Semaphore(window)
        self._stop = stop
        self._note = note
        self._on_disk = on_disk or {}
        self._resubmit_unknown = resubmit_unknown
        self._retry_failed = retry_failed
        self._grace = grace
        self._slots = slots
        self._settled = settled
        self._submitting: dict[anyio.CancelScope, Item] = {}
        self._never_sent = False
        self.budget = budget
        self.ledger = Ledger()
        """What each item came to, the failures and the run's totals."""

    async def run(self, items: AsyncGenerator[Item, None]) -> None:
        """Run every item of *items*; return when all are finished or the user stopped.

        Raises:
            OSError: reading *items* failed (items already started are finished first).
        """
        error: list[Exception] = []
        async with anyio.create_task_group() as outer:
            with anyio.CancelScope() as soft:
                outer.start_soon(self._enforce_stop, soft)
                async with anyio.create_task_group() as tg:
                    try:
                        async with contextlib.aclosing(items):
                            async for item in items:
                                await self._window.acquire()
                                tg.start_soon(self._guarded, item)
                    except Exception as exc:
                        # Kept out of the task group so it surfaces bare; the items
                        # under way still finish.
                        error.append(exc)
            outer.cancel_scope.cancel()
        if error:
            raise error[0]

    async def _enforce_stop(self, soft: anyio.CancelScope) -> None:
        await self._stop.requested.wait()
        soft.cancel()
        if self._submitting:
            self._note(
                f"stopping: waiting up to {self._grace:g}s for {len(self._submitting)} "
                "submit(s) under way to get their task ids (Ctrl-C again to stop now)"
            )
        with anyio.move_on_after(self._grace):
            await self._stop.forced.wait()
        if not self._submitting:
            return
        # Read and cancel in one step, with no await between: a submit counted here
        # as waiting for a slot is still parked in that queue when its cancellation
        # lands, so it was never sent.  When every submit left is parked there, none
        # of them is of unknown outcome, and a re-run may send them.
        waiting = self._client.statistics().limiter.waiting_for_slot
        self._never_sent = waiting >= len(self._submitting)
        for scope in list(self._submitting):
            scope.cancel()

    async def _guarded(self, item: Item) -> None:
        try:
            await self._item(item)
            settlement = self.ledger.settlement(item)
            if self._settled is not None and settlement is not None:
                await self._settled(item, *settlement)
        finally:
            self._window.release()

    async def _entry(self, item: Item) -> JournalEntry | None:
        journal = self._journal
        if journal is None:
            return None
        claim = getattr(journal, "claim", None)
        if claim is not None:
            # A shared journal: whoever acts on an item owns it now, so a worker
            # thought dead that wakes up can no longer submit it.
            await claim(item.key)
        return await journal.get(item.key)

    async def _ended(self, key: str, status: str) -> None:
        if self._journal is not None:
            with anyio.CancelScope(shield=True):
                await self._journal.ended(key, status)

    async def _item(self, item: Item) -> None:
        tracker = self._tracker
        if item.problem is not None:
            self.ledger.fail(item, None, "InvalidInputError", item.problem)
            tracker.finish(ok=False, started=False)
            return
        try:
            entry = await self._entry(item)
        except _ITEM_ERRORS as exc:  # the shared journal is unreachable
            self.ledger.fail(item, None, type(exc).__name__, str(exc))
            tracker.finish(ok=False, started=False)
            return
        action = plan(
            entry,
            self._on_disk,
            resubmit_unknown=self._resubmit_unknown,
            retry_failed=self._retry_failed,
        )
        if action is Action.SKIP:
            assert entry is not None
            assert entry.task_id is not None
            if entry.status is None:  # the files are there; the end was not recorded
                await self._ended(item.key, "SUCCESS")
            self.ledger.skipped(item, entry.task_id, self._on_disk[entry.task_id])
            tracker.skip()
            return
        if action is Action.REPORT:
            assert entry is not None
            self.ledger.fail_earlier(item, entry)
            tracker.finish(ok=False, started=False)
            return
        if action is Action.ATTACH:
            assert entry is not None
            assert entry.task_id is not None
            await self._follow(item, entry.task_id)
            return
        job = await self._submit(item)
        if job is not None:
            await self._finish(item, job, submitted=True)

    async def _follow(self, item: Item, task_id: str) -> None:
        """Attach to an earlier (or another worker's) task, and count it as holding a slot."""
        held: list[Slot] = []
        async with anyio.create_task_group() as tg:
            if self._slots is not None:
                tg.start_soon(self._hold_slot, self._slots, held)
            try:
                try:
                    job = self._client.attach(task_id, endpoint=item.endpoint or None)
                except ValueError as exc:  # a journal edited by hand
                    self.ledger.fail(item, task_id, type(exc).__name__, str(exc))
                    self._tracker.finish(ok=False, started=False)
                    return
                self.ledger.attached += 1
                await self._finish(item, job, submitted=False)
            finally:
                tg.cancel_scope.cancel()
                for slot in held:
                    slot.release()

    @staticmethod
    async def _hold_slot(slots: Limiter, held: list[Slot]) -> None:
        """Take a slot for a task that runs already, first in line.

        The task is followed at once; the slot only keeps the count right.  A dead
        worker's lease still holds the task's slot; when it lapses, the slot must
        come here, not to a new submit that RunningHub would refuse with a 421.
        """
        try:
            held.append(await slots.acquire_slot(front=True))
        except Exception as exc:  # the count is best effort; the task is followed anyway
            log.warning("no slot for a re-attached task: %s", exc)

    async def _finish(self, item: Item, job: Job, *, submitted: bool) -> None:
        tracker = self._tracker
        tracker.start()
        accepted_at = anyio.current_time()
        try:
            try:
                result = await self._wait(item, job, submitted=submitted)
            finally:
                tracker.ended()  # its slot is free: it no longer counts as running
            if submitted:
                self.ledger.latencies.append(anyio.current_time() - accepted_at)
            self.ledger.charge(result)
            paths = await self._client.download(result, self._out_dir)
        except _ITEM_ERRORS as exc:
            self.ledger.fail(item, job.task_id, type(exc).__name__, str(exc))
            tracker.saved(ok=False)
            return
        files = tuple(path.name for path in paths)  # written directly into out_dir
        self.ledger.saved(item, job.task_id, files)
        tracker.saved(ok=True)

    async def _wait(self, item: Item, job: Job, *, submitted: bool) -> JobResult:
        """``job.wait()``; journals an attached job's end (the client does a submitted one's)."""
        try:
            result = await job.wait()
        except RunningHubError as exc:
            status = end_status(exc)
            if not submitted and status is not None:
                await self._ended(item.key, status)
            raise
        if not submitted:
            await self._ended(item.key, "SUCCESS")
        return result

    async def _submit(self, item: Item) -> Job | None:
        """Submit *item* under its journal key; None if it did not go."""
        # The last point where the first Ctrl-C stops this item before anything is sent.
        await anyio.lowlevel.checkpoint()
        if self.budget is not None and not await self._within_budget(item):
            return None
        key = item.key if self._journal is not None else None
        # Shielded from the first Ctrl-C (see the module docstring); the second one
        # cancels this scope itself.
        with anyio.CancelScope(shield=True) as scope:
            self._submitting[scope] = item
            try:
                try:
                    job = await self._client.submit(item.endpoint, item.params, key=key)
                except _ITEM_ERRORS as exc:
                    self.ledger.fail(item, None, type(exc).__name__, str(exc))
                    self._tracker.finish(ok=False, started=False)
                    return None
                self.ledger.submitted += 1
                return job
            finally:
                del self._submitting[scope]
        # The second Ctrl-C (or the end of the grace) came first.
        if scope.cancelled_caught and self._never_sent:
            await self._ended(item.key, "REJECTED")
        return None

    async def _within_budget(self, item: Item) -> bool:
        """Whether the budget lets *item* be submitted (if not, it is reported, unsent)."""
        assert self.budget is not None
        try:
            if await self.budget.reserve(item.endpoint, item.params):
                return True
        except _ITEM_ERRORS as exc:  # it could not be priced: it alone fails, unsent
            self.ledger.fail(item, None, type(exc).__name__, f"could not be priced: {exc}")
            self._tracker.finish(ok=False, started=False)
            return False
        error = self.budget.exceeded()
        self.ledger.fail(item, None, BUDGET_ERROR, str(error))
        self._tracker.finish(ok=False, started=False)
        return False
