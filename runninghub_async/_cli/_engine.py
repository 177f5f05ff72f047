"""The batch engine: a window of items, each submitted (or re-attached), awaited and downloaded.

``run_many`` is not used on purpose: it hands out no task id before a job ends,
and the journal needs each id the moment RunningHub answers.  So each item runs
its own ``submit`` + journal + ``wait`` + ``download`` in one task group, at most
``window`` at once, with items pulled lazily from their source.

Stopping (Ctrl-C) has two steps.  The first stops reading items and cancels every
wait and download at once, but lets each submit already under way finish and
journal its task id (for up to ``grace`` seconds): cancelled mid-POST, a paid
task would exist with no record of it.  The second Ctrl-C, or the end of the
grace, cancels those too.  If every one of them was still waiting for a free
slot inside the client (so none was sent), each is journaled as never sent and
a re-run submits it; otherwise they stay ``intent`` in the journal, and a re-run
reports them as of unknown outcome instead of paying twice.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
from collections.abc import AsyncGenerator, Callable, Mapping
from decimal import Decimal

import anyio
import anyio.lowlevel
import attrs

from .. import CostBudget, Job, RunningHub, RunningHubError
from ._inputs import Item
from ._journal import ItemState, Journal, JournalEvent, Phase
from ._progress import Tracker
from ._stop import Stop

__all__ = ["NOT_SENT", "Action", "Engine", "Failure", "list_outputs", "plan"]

# Files ``RunningHub.download`` writes for a result: "<task_id>_<n>.<ext>", or
# "<task_id>_<n>-<k>.<ext>" when the name was taken.
_OUTPUT_NAME = re.compile(r"^(\d+)_\d+(?:-\d+)?\.[A-Za-z0-9]+$")

NOT_SENT = "NotSentError"
"""The error type journaled for a submit stopped while provably still waiting for a slot."""
_NOT_SENT_MESSAGE = "stopped by the user while waiting for a free slot; it was never sent"

_BUDGET = "BudgetExceededError"

# What a failed item may fail with without stopping the batch.
_ITEM_ERRORS = (RunningHubError, OSError, ValueError, TypeError)


class Action(enum.Enum):
    """What to do with an item, given what the journal and the output directory say."""

    SUBMIT = "submit"
    ATTACH = "attach"
    SKIP = "skip"
    REPORT = "report"  # an earlier run's failure or unknown outcome: report, send nothing


def plan(
    state: ItemState | None,
    on_disk: Mapping[str, tuple[str, ...]],
    *,
    resubmit_unknown: bool = False,
    retry_failed: bool = False,
) -> Action:
    """Decide what to do with an item.

    Args:
        state: what the journal knows of it.
        on_disk: output files in the output directory, by task id.
        resubmit_unknown: submit items whose earlier submit may have been accepted.
        retry_failed: submit again items whose task failed on RunningHub.
    """
    if state is None:
        return Action.SUBMIT
    if state.task_id is not None:
        if state.task_id in on_disk or (state.phase is Phase.DONE and not state.files):
            return Action.SKIP
        if state.final_failure:
            return Action.SUBMIT if retry_failed else Action.REPORT
        return Action.ATTACH  # submitted, or done with its files gone: wait and download
    if state.outcome_unknown:
        return Action.SUBMIT if resubmit_unknown else Action.REPORT
    return Action.SUBMIT  # refused before acceptance: nothing was spent


def list_outputs(directory: str | os.PathLike[str]) -> dict[str, tuple[str, ...]]:
    """The output files in *directory*, by task id (blocking: run it in a thread)."""
    found: dict[str, list[str]] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return {}
    for name in sorted(names):
        match = _OUTPUT_NAME.match(name)
        if match:
            found.setdefault(match.group(1), []).append(name)
    return {task_id: tuple(files) for task_id, files in found.items()}


@attrs.frozen(kw_only=True)
class Failure:
    """An item that did not end with its files written.

    Attributes:
        item: the item.
        task_id: its task, if it got one.
        error_type: the exception's class name.
        message: what went wrong.
        earlier: the failure is an earlier run's, reported again (nothing was sent now).
    """

    item: Item
    task_id: str | None
    error_type: str
    message: str
    earlier: bool = False

    @property
    def outcome_unknown(self) -> bool:
        """The item may have been accepted although no task id is known."""
        return self.task_id is None and self.error_type == "SubmitOutcomeUnknownError"

    def as_record(self) -> dict[str, object]:
        """The failure as one object of the failures file."""
        return {
            "index": self.item.index,
            "line": self.item.line,
            "endpoint": self.item.endpoint or None,
            "params": dict(self.item.params),
            "task_id": self.task_id,
            "error_type": self.error_type,
            "error": self.message,
            "earlier_run": self.earlier,
        }


class Engine:
    """Runs items through submit (or attach), wait and download, recording each step.

    Args:
        client: an open client.
        journal: where each step is recorded before the next begins.
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
    """

    def __init__(
        self,
        client: RunningHub,
        journal: Journal,
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
        self._submitting: set[anyio.CancelScope] = set()
        self._never_sent = False
        self.failures: list[Failure] = []
        """Every item that failed, in the order they failed."""
        self.latencies: list[float] = []
        """Seconds from acceptance to result, of each job submitted and finished in this run."""
        self.files: list[str] = []
        """The files written, relative to the output directory."""
        self.submitted = 0
        """Submits RunningHub accepted in this run."""
        self.attached = 0
        """Tasks of an earlier run attached to."""
        self.budget = budget
        self.cost = Decimal(0)
        """What the tasks that ended in this run cost, as RunningHub reports it."""
        self.outcomes: dict[int, dict[str, object]] = {}
        """Each item's line, task id, status and files, by index (the manifest)."""

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
        finally:
            self._window.release()

    def _fail(
        self,
        item: Item,
        task_id: str | None,
        error_type: str,
        message: str,
        *,
        earlier: bool = False,
    ) -> None:
        failure = Failure(
            item=item, task_id=task_id, error_type=error_type, message=message, earlier=earlier
        )
        self.failures.append(failure)
        status = "not_run" if error_type == _BUDGET else "failed"
        self._outcome(item, status, task_id, error=f"{error_type}: {message}")

    def _outcome(
        self,
        item: Item,
        status: str,
        task_id: str | None,
        files: tuple[str, ...] = (),
        error: str | None = None,
    ) -> None:
        record: dict[str, object] = {
            "index": item.index,
            "line": item.line,
            "task_id": task_id,
            "status": status,
            "files": list(files),
        }
        if error is not None:
            record["error"] = error
        self.outcomes[item.index] = record

    async def _item(self, item: Item) -> None:
        tracker = self._tracker
        if item.problem is not None:
            self._fail(item, None, "InvalidInputError", item.problem)
            tracker.finish(ok=False, started=False)
            return
        state = await self._journal.lookup(item.key)
        action = plan(
            state,
            self._on_disk,
            resubmit_unknown=self._resubmit_unknown,
            retry_failed=self._retry_failed,
        )
        if action is Action.SKIP:
            assert state is not None
            files = state.files or self._on_disk.get(state.task_id or "", ())
            if state.phase is not Phase.DONE:  # the files are there; the record was not
                await self._record(item, Phase.DONE, task_id=state.task_id, files=files)
            self._outcome(item, "done", state.task_id, files)
            tracker.skip()
            return
        if action is Action.REPORT:
            assert state is not None
            self._report_earlier(item, state)
            tracker.finish(ok=False, started=False)
            return
        if action is Action.ATTACH:
            assert state is not None
            assert state.task_id is not None
            try:
                job: Job | None = self._client.attach(state.task_id, endpoint=item.endpoint)
            except ValueError as exc:  # a journal edited by hand
                self._fail(item, state.task_id, type(exc).__name__, str(exc))
                tracker.finish(ok=False, started=False)
                return
            self.attached += 1
        else:
            job = await self._submit(item)
        if job is None:
            return
        tracker.start()
        accepted_at = anyio.current_time()
        try:
            try:
                result = await job.wait()
            finally:
                tracker.ended()  # its slot is free: it no longer counts as running
            if action is Action.SUBMIT:
                self.latencies.append(anyio.current_time() - accepted_at)
            if result.usage is not None and result.usage.consume_money is not None:
                self.cost += result.usage.consume_money
            paths = await self._client.download(result, self._out_dir)
        except _ITEM_ERRORS as exc:
            await self._record(item, Phase.FAILED, task_id=job.task_id, error=exc)
            self._fail(item, job.task_id, type(exc).__name__, str(exc))
            tracker.saved(ok=False)
            return
        files = tuple(path.name for path in paths)  # written directly into out_dir
        self.files.extend(files)
        await self._record(item, Phase.DONE, task_id=job.task_id, files=files)
        self._outcome(item, "done", job.task_id, files)
        tracker.saved(ok=True)

    def _report_earlier(self, item: Item, state: ItemState) -> None:
        if state.outcome_unknown:
            message = (
                "an earlier run was cut off while submitting this item, so RunningHub may "
                "have accepted it; it was not sent again (check your tasks on RunningHub, "
                "then re-run with --resubmit-unknown to send it anyway)"
            )
            self._fail(item, None, "SubmitOutcomeUnknownError", message, earlier=True)
            return
        message = f"{state.error} (in an earlier run; --retry-failed submits it again)"
        self._fail(item, state.task_id, state.error_type or "Error", message, earlier=True)

    async def _submit(self, item: Item) -> Job | None:
        """Submit *item* with its intent and task id journaled; None if it did not go."""
        # The last point where the first Ctrl-C stops this item before anything is sent.
        await anyio.lowlevel.checkpoint()
        if self.budget is not None and not await self._within_budget(item):
            return None
        # Shielded from the first Ctrl-C (see the module docstring); the second one
        # cancels this scope itself.
        with anyio.CancelScope(shield=True) as scope:
            self._submitting.add(scope)
            try:
                await self._record(item, Phase.INTENT)
                try:
                    job = await self._client.submit(item.endpoint, item.params)
                except _ITEM_ERRORS as exc:
                    await self._record(item, Phase.FAILED, error=exc)
                    self._fail(item, None, type(exc).__name__, str(exc))
                    self._tracker.finish(ok=False, started=False)
                    return None
                await self._record(item, Phase.SUBMITTED, task_id=job.task_id)
                self.submitted += 1
                return job
            finally:
                self._submitting.discard(scope)
        # The second Ctrl-C (or the end of the grace) came first.
        if scope.cancelled_caught and self._never_sent:
            with anyio.CancelScope(shield=True):
                await self._record(
                    item, Phase.FAILED, error_type=NOT_SENT, message=_NOT_SENT_MESSAGE
                )
        return None

    async def _within_budget(self, item: Item) -> bool:
        """Whether the budget lets *item* be submitted (if not, it is reported, unsent)."""
        assert self.budget is not None
        try:
            if await self.budget.reserve(item.endpoint, item.params):
                return True
        except _ITEM_ERRORS as exc:  # it could not be priced: it alone fails, unsent
            self._fail(item, None, type(exc).__name__, f"could not be priced: {exc}")
            self._tracker.finish(ok=False, started=False)
            return False
        error = self.budget.exceeded()
        self._fail(item, None, _BUDGET, str(error))
        self._tracker.finish(ok=False, started=False)
        return False

    async def _record(
        self,
        item: Item,
        phase: Phase,
        *,
        task_id: str | None = None,
        files: tuple[str, ...] = (),
        error: BaseException | None = None,
        error_type: str | None = None,
        message: str | None = None,
    ) -> None:
        if error is not None:
            error_type, message = type(error).__name__, str(error)
        await self._journal.record(
            JournalEvent(
                key=item.key,
                index=item.index,
                phase=phase,
                task_id=task_id,
                files=files,
                error_type=error_type,
                error=message,
            )
        )
