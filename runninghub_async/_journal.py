"""The submit journal: what was about to be sent, what was accepted, how it ended.

A journal makes a paid submit survive a crash of the process that sent it.  The
client records, for every submit (keyed by a caller key):

* ``intent`` BEFORE the POST leaves (again on a resend after a 421),
* ``accepted`` with the task id right after RunningHub accepts it,
* ``ended`` with the terminal status (or ``REJECTED`` when it was never accepted).

After a crash, every entry without an end is either re-attached (it has a task id)
or reported as an unknown outcome (an intent without a task id: the POST may or may
not have been accepted, and only the caller can decide whether paying twice is
acceptable).

`Journal` is the interface the client takes; `FileJournal` keeps it in an
append-only JSON-lines file for one process, and ``runninghub_async.redis``
provides one shared by several processes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol, Self

import anyio
import anyio.lowlevel
import attrs

from ._errors import JournalLockedError

__all__ = ["FileJournal", "Journal", "JournalEntry", "params_digest"]

FORMAT_VERSION = 1


@attrs.frozen
class JournalEntry:
    """What a journal knows of one submit.

    Attributes:
        key: the caller's key: a ``run_many`` item key, or a uuid for a plain submit.
        endpoint: the endpoint path (or ``"app:<id>"``, ``"workflow:<id>"``).
        params_digest: sha256 hex of the canonical JSON body (see `params_digest`).
        task_id: the RunningHub task id; None while only the intent is known (the
            outcome of the POST is unknown).
        status: None while outstanding; else the terminal status (``"SUCCESS"``,
            ``"FAILED"``, ``"CANCEL"``, ``"NOT_FOUND"``, ``"TIMEOUT"``) or
            ``"REJECTED"`` (never accepted).
        updated_at: when it last changed (``time.time()`` seconds).
    """

    key: str
    endpoint: str
    params_digest: str
    task_id: str | None
    status: str | None
    updated_at: float


class Journal(Protocol):
    """What ``RunningHub(journal=...)`` and ``run_many(journal=...)`` take."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def intent(self, key: str, endpoint: str, params_digest: str) -> None:
        """Record, durably, that *key* is about to be POSTed.

        Called before every send (again on a resend after 421).  Raises a
        `RunningHubError` when this writer may no longer submit *key* (another
        worker owns it now): the client then must not POST.
        """
        ...

    async def accepted(self, key: str, task_id: str) -> None:
        """Record the task id right after the submit was accepted."""
        ...

    async def ended(self, key: str, status: str) -> None:
        """Record the job's end (terminal status, or REJECTED when never accepted)."""
        ...

    async def get(self, key: str) -> JournalEntry | None:
        """What is known of *key*, or None."""
        ...

    async def outstanding(self) -> list[JournalEntry]:
        """Entries with no end yet (a shared journal leaves out another live writer's).

        Those with a task id are re-attached by ``client.recover()``; those without
        are unknown outcomes (reported, resent only when the caller says so).
        """
        ...


def params_digest(body: Mapping[str, Any]) -> str:
    """The sha256 hex digest of *body* as canonical JSON (sorted keys, compact, UTF-8).

    >>> params_digest({"b": 1, "a": "é"}) == params_digest({"a": "é", "b": 1})
    True
    """
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def apply_event(entry: JournalEntry | None, record: Mapping[str, Any]) -> JournalEntry | None:
    """The entry after one journal record (a decoded line); None if it does not apply.

    Raises:
        KeyError, TypeError, ValueError, OverflowError: *record* is not a journal
            record (a field is missing, or is not of its kind).
    """
    event = record.get("event")
    key = _field(record, "key")
    at = float(record.get("at", 0.0))
    if event == "intent":
        # A new intent starts a new attempt: an earlier attempt's task and end are
        # forgotten (the caller chose to resend).
        endpoint, digest = _field(record, "endpoint"), _field(record, "digest")
        return JournalEntry(key, endpoint, digest, None, None, at)
    if event not in ("accepted", "ended"):
        return None
    if entry is None:
        # No intent known (a journal opened after the submit): keep what is known.
        entry = JournalEntry(key, "", "", None, None, at)
    if event == "accepted":
        return attrs.evolve(entry, task_id=_field(record, "task_id"), updated_at=at)
    return attrs.evolve(entry, status=_field(record, "status"), updated_at=at)


def _field(record: Mapping[str, Any], name: str) -> str:
    # A foreign line whose task id is null or a list must not become the task
    # "None" that recover() would then follow.
    value = record[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        # RecursionError: a line nested deeper than the parser goes (foreign or
        # hostile) is one more unreadable line, not a reason to refuse the journal.
        return None
    if not isinstance(record, dict) or record.get("v") != FORMAT_VERSION or "key" not in record:
        return None
    return record


class FileJournal:
    """The journal as an append-only JSON-lines file, for one process.

    Each event is one line, written to the file before the call returns (and
    fsync'd when *fsync* is true: without it a power loss may lose the last
    lines, a crash of the process does not).  A record whose write raised (a
    full disk) is not in the file, then or later: the submit it announced was
    not sent.  Entering replays the file to rebuild the latest state of every
    key; a line that is not a record (the last one torn by a crash, or anything
    foreign: not JSON, nested too deep, fields of the wrong kind) is skipped and
    counted in ``unreadable``, and a torn last line is terminated before the
    next append.  The file is locked while open, so two processes cannot share
    it: give each process its own, or use ``runninghub_async.redis.RedisJournal``.

    ::

        async with FileJournal("submits.jsonl") as journal:
            for entry in await journal.outstanding():
                ...

    Args:
        path: the file (created, with its directory, if missing).
        fsync: fsync after every record (durable against power loss, slower).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = anyio.Path(path)
        self.fsync = fsync
        self.unreadable = 0
        """Lines of the file that were not journal records (torn by a crash, or foreign)."""
        self._entries: dict[str, JournalEntry] = {}
        self._fd: int | None = None
        self._torn = False  # a failed append may have left part of a line
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"<FileJournal {os.fspath(self.path)!r} entries={len(self._entries)}>"

    async def __aenter__(self) -> Self:
        if self._fd is not None:
            raise RuntimeError("the journal is already open")
        await self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_BINARY", 0)
        fd = await anyio.to_thread.run_sync(os.open, os.fspath(self.path), flags, 0o666)
        try:
            await anyio.to_thread.run_sync(_lock, fd, os.fspath(self.path))
            data = await self.path.read_bytes()
            self._entries, self.unreadable = {}, 0
            self._replay(data)
            # A torn last line is ended before the next record, so that record
            # starts on a line of its own.
            self._torn = bool(data) and not data.endswith(b"\n")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(os.close, fd)
            raise
        self._fd = fd
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            async with self._lock:  # a write in progress finishes first
                fd, self._fd = self._fd, None
                if fd is not None:
                    await anyio.to_thread.run_sync(os.close, fd)

    def _replay(self, data: bytes) -> None:
        for line in data.splitlines():
            if not line.strip():
                continue
            record = _decode(line)
            entry = None
            if record is not None:
                try:
                    entry = apply_event(self._entries.get(str(record["key"])), record)
                except (KeyError, TypeError, ValueError, OverflowError):
                    entry = None
            if entry is None:
                self.unreadable += 1
            else:
                self._entries[entry.key] = entry

    async def _append(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise RuntimeError("the journal is not open; use `async with`")
        record = {"v": FORMAT_VERSION, **record, "at": round(time.time(), 3)}
        entry = apply_event(self._entries.get(record["key"]), record)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        # Shielded: a line half-written when a cancellation lands would leave the
        # caller unsure whether it is on disk.
        with anyio.CancelScope(shield=True):
            async with self._lock:
                fd = self._fd  # read again under the lock: a close may have come first
                if fd is None:
                    raise RuntimeError("the journal is not open; use `async with`")
                data = (b"\n" if self._torn else b"") + line.encode("utf-8")
                error, torn = await anyio.to_thread.run_sync(_append_whole, fd, data, self.fsync)
                self._torn = torn
                if error is not None:
                    raise error
        if entry is not None:
            self._entries[entry.key] = entry

    async def intent(self, key: str, endpoint: str, params_digest: str) -> None:
        """Record that *key* is about to be POSTed (see `Journal.intent`).

        Raises:
            OSError: the line could not be written.
        """
        await self._append(
            {"event": "intent", "key": key, "endpoint": endpoint, "digest": params_digest}
        )

    async def accepted(self, key: str, task_id: str) -> None:
        """Record *key*'s task id.

        Raises:
            OSError: the line could not be written.
        """
        await self._append({"event": "accepted", "key": key, "task_id": task_id})

    async def ended(self, key: str, status: str) -> None:
        """Record *key*'s end with its terminal *status*.

        Raises:
            OSError: the line could not be written.
        """
        await self._append({"event": "ended", "key": key, "status": status})

    async def get(self, key: str) -> JournalEntry | None:
        """What is known of *key*, or None."""
        await anyio.lowlevel.checkpoint()
        return self._entries.get(key)

    async def outstanding(self) -> list[JournalEntry]:
        """Entries with no end yet, oldest first."""
        await anyio.lowlevel.checkpoint()
        pending = [e for e in self._entries.values() if e.status is None]
        return sorted(pending, key=lambda e: e.updated_at)


def _append_whole(fd: int, data: bytes, fsync: bool) -> tuple[OSError | None, bool]:
    """Append *data* to the file at *fd* whole, or (as far as can be) not at all.

    Written straight to the file, never through a buffer: a record whose write
    failed (a full disk) must not reach the file later, behind records written
    after it, and tell a re-run that a submit was attempted when its caller was
    told it failed and nothing was sent.  Part of a line written before the
    error is cut off again.

    Returns:
        the error (None when the record is in the file), and whether part of the
        record stayed in the file because cutting it off failed too (a torn
        line, which replay skips and the next record must end).
    """
    start = os.fstat(fd).st_size
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(errno.EIO, "the journal file took no bytes")
            view = view[written:]
        if fsync:
            os.fsync(fd)
    except OSError as error:
        try:
            os.ftruncate(fd, start)
        except OSError:
            return error, True
        return error, False
    return None, False


def _lock(fd: int, path: str) -> None:
    if sys.platform == "win32":  # pragma: no cover - no advisory locks there
        return
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise JournalLockedError(
            f"{path} is open in another process; one journal file serves one process"
        ) from None
