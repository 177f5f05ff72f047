"""The batch journal: what was done to each item, so that a re-run resumes instead of repeating.

Every item of a batch moves through these phases, and each step is recorded::

    intent ──► submitted ──► done
      │            │
      │            └──────► failed    (the task ended badly, or the wait or download failed)
      └─────────────────► failed    (refused before acceptance, or the outcome is unknown)

``intent`` is durable BEFORE the submit's POST leaves, and ``submitted`` (with the
task id) right after RunningHub accepts it, before anything waits on the task.  So
after a crash or Ctrl-C at any point a re-run knows, for every item, one of:

* it has a task id: attach to the task, never submit it again;
* its last word is ``intent``: the POST may or may not have been accepted, and
  only the user can decide whether paying twice is acceptable;
* nothing at all: it was never sent.

The batch talks to a `Journal` (``record`` and ``lookup``), so a shared store (a
Redis hash per batch, say) can replace the file for several machines; see the
design's "Beyond one machine".  `FileJournal` is the in-process version: one
append-only JSON-lines file beside the output, flushed and fsync'd in groups.
`MemoryJournal` serves the demo, which needs no resume.
"""

from __future__ import annotations

import enum
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol, Self

import anyio
import anyio.lowlevel
import attrs

__all__ = [
    "FINAL_ERRORS",
    "FileJournal",
    "ItemState",
    "Journal",
    "JournalEvent",
    "JournalLockedError",
    "MemoryJournal",
    "Phase",
    "decode",
    "encode",
    "fold",
]

FORMAT_VERSION = 1

# Errors that end an item for good: the task ended on RunningHub, and running it
# again would cost again, so a re-run resubmits these only when asked to.
FINAL_ERRORS = frozenset({"TaskFailedError", "TaskCancelledError", "TaskNotFoundError"})

_UNKNOWN_OUTCOME = "SubmitOutcomeUnknownError"


class Phase(enum.StrEnum):
    """Where an item is in its life (see the module docstring)."""

    INTENT = "intent"
    SUBMITTED = "submitted"
    DONE = "done"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class JournalEvent:
    """One step of one item, as appended to the journal.

    Attributes:
        key: the item's identity across runs (its index plus a hash of its request).
        index: the item's position in the input.
        phase: the step taken.
        task_id: the RunningHub task id, once known.
        files: the files written for the item, relative to the output directory.
        error_type: the exception class name of a failure.
        error: the failure's message.
        at: when it happened (epoch seconds), for people reading the file.
    """

    key: str
    index: int
    phase: Phase
    task_id: str | None = None
    files: tuple[str, ...] = ()
    error_type: str | None = None
    error: str | None = None
    at: float = attrs.field(factory=time.time)


@attrs.frozen(kw_only=True)
class ItemState:
    """What the journal knows of one item: all its events folded together."""

    key: str
    index: int
    phase: Phase
    task_id: str | None = None
    files: tuple[str, ...] = ()
    error_type: str | None = None
    error: str | None = None

    @property
    def outcome_unknown(self) -> bool:
        """A submit was (maybe) sent and no task id came back: it may have been accepted."""
        if self.task_id is not None:
            return False
        return self.phase is Phase.INTENT or self.error_type == _UNKNOWN_OUTCOME

    @property
    def final_failure(self) -> bool:
        """The item's task ended badly on RunningHub; retrying it means paying again."""
        return self.phase is Phase.FAILED and self.error_type in FINAL_ERRORS

    @property
    def resumable(self) -> bool:
        """A re-run would attach to this item's task instead of submitting anything."""
        return self.task_id is not None and self.phase is not Phase.DONE and not self.final_failure


def fold(state: ItemState | None, event: JournalEvent) -> ItemState:
    """The state of an item after *event*."""
    if event.phase is Phase.INTENT or state is None:
        # A new intent starts a new attempt: the task of an earlier one (a failure
        # the user asked to retry) is forgotten.
        return ItemState(
            key=event.key,
            index=event.index,
            phase=event.phase,
            task_id=event.task_id,
            files=event.files,
            error_type=event.error_type,
            error=event.error,
        )
    return ItemState(
        key=state.key,
        index=state.index,
        phase=event.phase,
        task_id=event.task_id or state.task_id,
        files=event.files or state.files,
        error_type=event.error_type,
        error=event.error,
    )


def encode(event: JournalEvent) -> str:
    """One journal line for *event*, newline included."""
    record: dict[str, Any] = {"v": FORMAT_VERSION, "key": event.key, "index": event.index}
    record["phase"] = event.phase.value
    if event.task_id is not None:
        record["task_id"] = event.task_id
    if event.files:
        record["files"] = list(event.files)
    if event.error_type is not None:
        record["error_type"] = event.error_type
        record["error"] = event.error or ""
    record["at"] = round(event.at, 3)
    return json.dumps(record, ensure_ascii=False) + "\n"


def decode(line: str) -> JournalEvent | None:
    """The event of one journal line, or None when the line is not one (torn, foreign)."""
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or record.get("v") != FORMAT_VERSION:
            return None
        task_id = record.get("task_id")
        return JournalEvent(
            key=str(record["key"]),
            index=int(record["index"]),
            phase=Phase(record["phase"]),
            task_id=None if task_id is None else str(task_id),
            files=tuple(str(f) for f in record.get("files", ())),
            error_type=record.get("error_type"),
            error=record.get("error"),
            at=float(record.get("at", 0.0)),
        )
    except (ValueError, KeyError, TypeError):
        return None


class Journal(Protocol):
    """Where a batch keeps each item's progress; a re-run reads it back to resume."""

    async def record(self, event: JournalEvent) -> None:
        """Make *event* durable; when this returns, a crash cannot lose it."""
        ...

    async def lookup(self, key: str) -> ItemState | None:
        """What is known of item *key*, or None if nothing is."""
        ...

    async def resumable(self) -> int:
        """How many items have a task a re-run would attach to."""
        ...


class MemoryJournal:
    """A journal that lives as long as the process: for runs that need no resume."""

    def __init__(self, events: Iterable[JournalEvent] = ()) -> None:
        self._states: dict[str, ItemState] = {}
        for event in events:
            self._states[event.key] = fold(self._states.get(event.key), event)

    @property
    def states(self) -> Mapping[str, ItemState]:
        """Every item's state, by key."""
        return self._states

    def apply(self, event: JournalEvent) -> None:
        """Remember *event* (without yielding to the event loop)."""
        self._states[event.key] = fold(self._states.get(event.key), event)

    async def record(self, event: JournalEvent) -> None:
        """Remember *event*; a cancellation never interrupts it."""
        self.apply(event)
        await anyio.lowlevel.cancel_shielded_checkpoint()

    async def lookup(self, key: str) -> ItemState | None:
        """What is known of item *key*."""
        await anyio.lowlevel.checkpoint()
        return self._states.get(key)

    async def resumable(self) -> int:
        """How many items have a task a re-run would attach to."""
        await anyio.lowlevel.checkpoint()
        return sum(1 for state in self._states.values() if state.resumable)


class JournalLockedError(OSError):
    """Another process holds the journal: two batches must not share an output directory."""


class FileJournal:
    """The journal as an append-only JSON-lines file, locked to one process at a time.

    Open it with ``async with await FileJournal.open(path)``.  Records are written
    in groups: whoever finds the file free writes every line queued so far, then
    flushes and fsyncs once, so N concurrent items cost far fewer than N fsyncs
    and each ``record`` still returns only once its own line is on disk.

    A line torn by a crash mid-write is skipped on reading (``unreadable`` counts
    them) and terminated before the next append.
    """

    def __init__(self, path: anyio.Path, fd: int, events: list[JournalEvent], unreadable: int):
        self.path = path
        self.unreadable = unreadable
        """Lines of the file that were not journal events (torn by a crash, or foreign)."""
        self._fd: int | None = fd
        self._memory = MemoryJournal(events)
        self._lock = anyio.Lock()
        self._queued: list[str] = []
        self._queued_upto = 0  # sequence number of the next line queued
        self._written_upto = 0  # every line numbered below this is on disk

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> FileJournal:
        """Read the journal at *path* (if any), lock it, and open it for appending.

        Raises:
            JournalLockedError: another process has it open.
            OSError: it cannot be read or created.
        """
        target = anyio.Path(path)
        await target.parent.mkdir(parents=True, exist_ok=True)
        fd, events, unreadable = await anyio.to_thread.run_sync(_open_sync, os.fspath(target))
        return cls(target, fd, events, unreadable)

    @property
    def states(self) -> Mapping[str, ItemState]:
        """Every item's state, by key (events recorded by this process included)."""
        return self._memory.states

    async def record(self, event: JournalEvent) -> None:
        """Append *event*; return once it is flushed and fsync'd.

        Raises:
            OSError: the write failed.
        """
        fd = self._fd
        if fd is None:
            raise ValueError("the journal is closed")
        self._memory.apply(event)
        self._queued.append(encode(event))
        mine = self._queued_upto
        self._queued_upto += 1
        # Shielded: a line half-handled when a cancellation lands would be either
        # lost or written twice, and a caller that was cancelled while its line
        # was written would not know which.
        with anyio.CancelScope(shield=True):
            async with self._lock:
                if self._written_upto > mine:
                    return  # an earlier writer took our line along
                lines, upto = self._queued, self._queued_upto
                self._queued = []
                try:
                    await anyio.to_thread.run_sync(_append_sync, fd, "".join(lines))
                except BaseException:
                    # Put them back for the next writer: a line written twice is
                    # harmless (replaying an event changes nothing), a lost one is not.
                    self._queued[:0] = lines
                    raise
                self._written_upto = upto

    async def lookup(self, key: str) -> ItemState | None:
        """What is known of item *key*."""
        return await self._memory.lookup(key)

    async def resumable(self) -> int:
        """How many items have a task a re-run would attach to."""
        return await self._memory.resumable()

    async def aclose(self) -> None:
        """Release the lock and close the file (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with anyio.CancelScope(shield=True):
                async with self._lock:  # let a group write in progress finish
                    await anyio.to_thread.run_sync(os.close, fd)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _open_sync(path: str) -> tuple[int, list[JournalEvent], int]:
    created = not os.path.exists(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        _lock(fd, path)
        if created:
            _sync_directory(os.path.dirname(os.path.abspath(path)))
        with os.fdopen(os.dup(fd), "rb") as file:
            data = file.read()
        events: list[JournalEvent] = []
        unreadable = 0
        for raw in data.splitlines():
            if not raw.strip():
                continue
            event = decode(raw.decode("utf-8", errors="replace"))
            if event is None:
                unreadable += 1
            else:
                events.append(event)
        if data and not data.endswith(b"\n"):
            # The last line was torn by a crash: end it, so the next record
            # starts on a line of its own.
            _append_sync(fd, "\n")
    except BaseException:
        os.close(fd)
        raise
    return fd, events, unreadable


def _sync_directory(directory: str) -> None:
    """Make a new file's directory entry durable, not only its contents (POSIX)."""
    if sys.platform == "win32":  # pragma: no cover - directories cannot be opened there
        return
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _lock(fd: int, path: str) -> None:
    if sys.platform == "win32":  # pragma: no cover - no advisory locks there
        return
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalLockedError(
            f"{path} is in use by another batch; two batches cannot share an output directory"
        ) from None


def _append_sync(fd: int, text: str) -> None:
    data = text.encode("utf-8")
    while data:
        written = os.write(fd, data)
        data = data[written:]
    os.fsync(fd)
