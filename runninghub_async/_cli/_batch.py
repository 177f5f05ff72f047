"""The ``batch`` command: a file of prompts (or JSONL params) in, images and a failures file out.

Beside the images, the output directory holds:

* ``.runninghub-journal.jsonl``: the library's `FileJournal` of the batch: every
  submit's intent (before the POST), task id (right after acceptance) and end,
  keyed by item (see `_journal`).  A re-run of the same command reads it to
  attach to tasks already submitted and to skip items whose files are there.
* ``failures.jsonl``: one object per failed item (index, line, params, task id,
  error type and message), rewritten at the end of every run; removed when a run
  has no failures.
* ``manifest.jsonl``: one object per item this run saw, in input order:
  ``{"index", "line", "task_id", "status", "files"}`` (and ``"error"``), where
  status is ``done`` (its files are there), ``failed`` or ``not_run`` (kept back
  by ``--max-cost``); it maps each line of FILE to its task and files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal

import anyio
import attrs

from .. import CostBudget
from .._journal import FileJournal
from ._backend import ClientOptions, Target, open_session
from ._engine import Engine
from ._inputs import RequestBuilder, count_items, read_items
from ._journal import LateJournal, resume_counts
from ._ledger import Failure
from ._plan import list_outputs
from ._progress import Tracker, make_display, rich_console, show_while
from ._stop import Interrupted, Stop
from ._summary import print_summary, summarize

__all__ = ["FAILURES_NAME", "JOURNAL_NAME", "MANIFEST_NAME", "BatchRequest", "run_batch"]

JOURNAL_NAME = ".runninghub-journal.jsonl"
FAILURES_NAME = "failures.jsonl"
MANIFEST_NAME = "manifest.jsonl"


class EmptyInputError(ValueError):
    """The batch file holds no items."""


@attrs.frozen(kw_only=True)
class BatchRequest:
    """What ``batch`` was asked for."""

    file: str
    output: str
    builder: RequestBuilder
    options: ClientOptions
    max_cost: Decimal | None = None
    resubmit_unknown: bool = False
    retry_failed: bool = False


def resume_line(attach: int, unknown: int) -> str | None:
    """What a re-run says it resumes, or None when the journal has nothing outstanding."""
    if not attach and not unknown:
        return None
    parts = [f"{attach} to re-attach"]
    if unknown:
        parts.append(f"{unknown} of unknown outcome")
    return "resuming from the journal: " + ", ".join(parts)


async def write_records(
    out_dir: anyio.Path,
    name: str,
    records: Mapping[int, Mapping[str, object]],
    *,
    keep_empty: bool = False,
) -> anyio.Path:
    """Write *name* in *out_dir*: one JSON object per line, by index (none: removed)."""
    path = out_dir / name
    if not records and not keep_empty:
        await path.unlink(missing_ok=True)
        return path
    text = "".join(
        json.dumps(records[index], ensure_ascii=False, default=str) + "\n"
        for index in sorted(records)
    )
    # Written whole, then renamed: a reader never sees half a file.
    part = out_dir / (name + ".part")
    await part.write_text(text, encoding="utf-8")
    await part.replace(path)
    return path


async def write_failures(out_dir: anyio.Path, failures: Sequence[Failure]) -> anyio.Path:
    """Write (or, with no failures, remove) the failures file; its path."""
    records = {f.item.index: f.as_record() for f in failures}
    return await write_records(out_dir, FAILURES_NAME, records)


async def write_manifest(out_dir: anyio.Path, outcomes: Mapping[int, Mapping[str, object]]) -> None:
    """Write ``manifest.jsonl``: each item's line, task id, status and files, by index."""
    await write_records(out_dir, MANIFEST_NAME, outcomes, keep_empty=True)


async def run_batch(target: Target, request: BatchRequest, stop: Stop) -> int:
    """Run the batch; 0 when every item is done, 1 when any failed.

    Raises:
        Interrupted: the user stopped it (after it saved what it knew).
        JournalLockedError: another batch writes to the same directory.
        OSError, ValueError: the file cannot be read, the output cannot be written.
        RunningHubError: the client could not open, or the key was refused.
    """
    total, fmt = await count_items(request.file)
    if total == 0:
        raise EmptyInputError(f"{request.file} holds no prompts (every line is blank)")
    out_dir = anyio.Path(request.output)
    console = rich_console()
    journal = LateJournal(FileJournal(out_dir / JOURNAL_NAME, fsync=True))
    async with open_session(target, request.options, journal=journal) as session:
        client = session.client
        if request.options.max_in_flight != "auto":
            # "auto" asked already; either way a bad key stops here, before the
            # output directory or its journal exist.
            await client.queue_status()
        await journal.open()
        unreadable = getattr(journal.journal, "unreadable", 0)
        if unreadable:
            print(
                f"note: {unreadable} line(s) of {JOURNAL_NAME} could not be read "
                "(torn by a crash, or written by an older version) and were ignored",
                flush=True,
            )
        resume = resume_line(*await resume_counts(journal))
        if resume:
            print(resume, flush=True)
        on_disk = await anyio.to_thread.run_sync(list_outputs, os.fspath(out_dir))
        window = client.statistics().limiter.max_in_flight
        noun = "item" if total == 1 else "items"
        budget_note = f", at most {request.max_cost}" if request.max_cost is not None else ""
        print(
            f"batch: {total} {noun} from {request.file} on {target.where}, "
            f"{window} at a time{budget_note}; files go to {request.output}",
            flush=True,
        )
        tracker = Tracker(total)
        display = make_display(tracker, label="batch", console=console)
        budget = (
            CostBudget(client.price, request.max_cost) if request.max_cost is not None else None
        )
        engine = Engine(
            client,
            journal,
            tracker,
            request.output,
            window=window,
            stop=stop,
            note=display.note,
            on_disk=on_disk,
            resubmit_unknown=request.resubmit_unknown,
            retry_failed=request.retry_failed,
            budget=budget,
        )
        items = read_items(request.file, fmt, request.builder)
        await show_while(display, lambda: engine.run(items))
        wall = tracker.elapsed()
        stats = client.statistics()
    # Counted after the client closed: ends it learnt while closing are written.
    async with FileJournal(out_dir / JOURNAL_NAME) as reread:
        pending, _ = await resume_counts(reread)
    failures_path = await write_failures(out_dir, engine.ledger.failures)
    await write_manifest(out_dir, engine.ledger.outcomes)
    print_summary(
        summarize(engine=engine, tracker=tracker, stats=stats, wall=wall),
        title="summary",
        console=console,
    )
    explain_failures(engine.ledger.failures, failures_path)
    if stop.requested.is_set():
        noun = "task" if pending == 1 else "tasks"
        raise Interrupted(
            "interrupted; re-run the same command to resume "
            f"({pending} {noun} already submitted will be re-attached)",
            status=stop.exit_status,
        )
    return 1 if engine.ledger.failures else 0


def explain_failures(failures: Sequence[Failure], path: anyio.Path) -> None:
    if not failures:
        return
    noun = "item" if len(failures) == 1 else "items"
    print(f"{len(failures)} {noun} failed; each is listed with its error in {path}")
    unknown = [f for f in failures if f.outcome_unknown]
    if unknown:
        lines = ", ".join(str(f.item.line) for f in unknown[:10])
        more = ", ..." if len(unknown) > 10 else ""
        print(
            f"{len(unknown)} of them (lines {lines}{more}) may have been accepted by a submit "
            "that never answered; they were not sent again. Check your tasks on RunningHub, "
            "then re-run with --resubmit-unknown to send them anyway."
        )
    budget = [f for f in failures if f.error_type == "BudgetExceededError"]
    if budget:
        print(
            f"{len(budget)} of them were not submitted: they would have passed --max-cost "
            "(re-run with a larger budget to run them; nothing is paid twice)"
        )
    earlier = [f for f in failures if f.earlier and not f.outcome_unknown]
    if earlier:
        print(
            f"{len(earlier)} of them failed on RunningHub in an earlier run and were not "
            "submitted again (that costs again); --retry-failed submits them."
        )
