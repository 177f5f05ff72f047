"""What each item of a run came to (its manifest record, its failure) and the run's totals.

The `Engine` decides and waits; the `Ledger` only writes down.  Keeping the
records apart lets the batch, the distributed batch and the demo read one
object for the manifest, the failures file and the summary, whatever the engine
went through to produce them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import attrs

from .. import JobResult
from .._journal import JournalEntry
from ._inputs import Item
from ._plan import FINAL_STATUSES

__all__ = ["BUDGET_ERROR", "Failure", "Ledger"]

BUDGET_ERROR = "BudgetExceededError"
"""The error type of an item ``--max-cost`` kept back (its manifest status is ``not_run``)."""


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


class Ledger:
    """The records of one engine run: each item's outcome, the failures and the totals."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        """Every item that failed, in the order they failed."""
        self.latencies: list[float] = []
        """Seconds from acceptance to result, of each job submitted and finished in this run."""
        self.files: list[str] = []
        """The files written, relative to the output directory."""
        self.submitted = 0
        """Submits RunningHub accepted in this run."""
        self.attached = 0
        """Tasks of an earlier run (or of another worker) attached to."""
        self.cost = Decimal(0)
        """What the tasks that ended in this run cost, as RunningHub reports it."""
        self.outcomes: dict[int, dict[str, object]] = {}
        """Each item's line, task id, status and files, by index (the manifest)."""
        self._skipped: set[int] = set()
        self._failure_of: dict[int, Failure] = {}

    def __repr__(self) -> str:
        return (
            f"<Ledger outcomes={len(self.outcomes)} failures={len(self.failures)} "
            f"submitted={self.submitted} attached={self.attached}>"
        )

    def fail(
        self,
        item: Item,
        task_id: str | None,
        error_type: str,
        message: str,
        *,
        earlier: bool = False,
    ) -> None:
        """Record that *item* failed with *error_type*: *message*."""
        failure = Failure(
            item=item, task_id=task_id, error_type=error_type, message=message, earlier=earlier
        )
        self.failures.append(failure)
        self._failure_of[item.index] = failure
        status = "not_run" if error_type == BUDGET_ERROR else "failed"
        self._record(item, status, task_id, error=f"{error_type}: {message}")

    def fail_earlier(self, item: Item, entry: JournalEntry) -> None:
        """Record again the failure (or unknown outcome) an earlier run left in *entry*."""
        if entry.task_id is None:
            message = (
                "an earlier run was cut off while submitting this item, so RunningHub may "
                "have accepted it; it was not sent again (check your tasks on RunningHub, "
                "then re-run with --resubmit-unknown to send it anyway)"
            )
            self.fail(item, None, "SubmitOutcomeUnknownError", message, earlier=True)
            return
        status = entry.status or "FAILED"
        message = (
            f"task {entry.task_id} ended {status} on RunningHub in an earlier run "
            "(--retry-failed submits it again)"
        )
        error_type = FINAL_STATUSES.get(status, "TaskFailedError")
        self.fail(item, entry.task_id, error_type, message, earlier=True)

    def saved(self, item: Item, task_id: str, files: tuple[str, ...]) -> None:
        """Record that this run wrote *item*'s *files*."""
        self.files.extend(files)
        self._record(item, "done", task_id, files)

    def skipped(self, item: Item, task_id: str, files: tuple[str, ...]) -> None:
        """Record that *item*'s *files* were there already, so nothing was run."""
        self._skipped.add(item.index)
        self._record(item, "done", task_id, files)

    def charge(self, result: JobResult) -> None:
        """Add what *result*'s task cost, when RunningHub reported it."""
        if result.usage is not None and result.usage.consume_money is not None:
            self.cost += result.usage.consume_money

    def settlement(self, item: Item) -> tuple[Mapping[str, object], Failure | None, bool] | None:
        """``(record, failure, skipped)`` of *item*, or None if it never settled."""
        record = self.outcomes.get(item.index)
        if record is None:
            return None
        return record, self._failure_of.get(item.index), item.index in self._skipped

    def _record(
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
