"""What a re-run does with each item: the journal's record and the files on disk decide.

A batch journals each submit (the intent, the task id, the end) and writes each
result's files into the output directory under the task's id.  On a re-run,
`plan` reads both for an item and picks one `Action`; `list_outputs` finds the
files.  Both are pure (or blocking, for `list_outputs`) so they can be tested
without a client.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping

from .._journal import JournalEntry

__all__ = ["FINAL_STATUSES", "Action", "list_outputs", "plan"]

# Files ``RunningHub.download`` writes for a result: "<task_id>_<n>.<ext>", or
# "<task_id>_<n>-<k>.<ext>" when the name was taken.
_OUTPUT_NAME = re.compile(r"^(\d+)_\d+(?:-\d+)?\.[A-Za-z0-9]+$")

# Journal ends that close an item for good: the task ended on RunningHub, and
# running it again would cost again, so a re-run resubmits these only when asked.
FINAL_STATUSES = {
    "FAILED": "TaskFailedError",
    "CANCEL": "TaskCancelledError",
    "NOT_FOUND": "TaskNotFoundError",
}


class Action(enum.Enum):
    """What to do with an item, given what the journal and the output directory say."""

    SUBMIT = "submit"
    ATTACH = "attach"
    SKIP = "skip"
    REPORT = "report"  # an earlier run's failure or unknown outcome: report, send nothing


def plan(
    entry: JournalEntry | None,
    on_disk: Mapping[str, tuple[str, ...]],
    *,
    resubmit_unknown: bool = False,
    retry_failed: bool = False,
) -> Action:
    """Decide what to do with an item.

    Args:
        entry: what the journal knows of it.
        on_disk: output files in the output directory, by task id.
        resubmit_unknown: submit items whose earlier submit may have been accepted.
        retry_failed: submit again items whose task failed on RunningHub.
    """
    if entry is None:
        return Action.SUBMIT
    if entry.task_id is not None and entry.status != "REJECTED":
        if entry.task_id in on_disk:
            return Action.SKIP
        if entry.status in FINAL_STATUSES:
            return Action.SUBMIT if retry_failed else Action.REPORT
        # Outstanding, timed out, or done with its files gone: follow it again.
        return Action.ATTACH
    if entry.status is None:  # an intent and no answer: it may have been accepted
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
