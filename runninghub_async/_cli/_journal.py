"""The batch's journal: the library's `Journal`, opened when the batch starts, not with the client.

A batch records every submit through the client's journal (``RunningHub(journal=...)``):
the intent before the POST, the task id right after acceptance, the end when the
job ends (see ``runninghub_async._journal``).  A re-run reads it back to attach to
tasks already submitted and to skip finished items; `_plan.plan` decides.

The client enters its journal when it opens, but a batch must not create its
output directory and journal before the key has been checked (a typo in the key
leaves nothing behind).  `LateJournal` therefore stands in for the real one: the
client may enter it, and it opens the real journal only when `open` is called.
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Self

from .._journal import Journal, JournalEntry

__all__ = ["LateJournal", "resume_counts"]


class LateJournal:
    """A `Journal` that opens the one it wraps on `open`, and closes it when it is left.

    Every other call before `open` raises ``RuntimeError``.  ``claim`` is passed
    through when the wrapped journal has one (a shared journal).
    """

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._stack: contextlib.AsyncExitStack | None = None

    def __repr__(self) -> str:
        state = "open" if self._stack is not None else "not open"
        return f"<LateJournal {self.journal!r} {state}>"

    async def open(self) -> None:
        """Enter the wrapped journal (once)."""
        if self._stack is None:
            stack = contextlib.AsyncExitStack()
            await stack.enter_async_context(self.journal)
            self._stack = stack

    def _opened(self) -> Journal:
        if self._stack is None:
            raise RuntimeError("the batch journal is not open yet")
        return self.journal

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def claim(self, key: str) -> int | None:
        """Take *key* over when the wrapped journal is shared; None otherwise."""
        claim = getattr(self._opened(), "claim", None)
        return None if claim is None else int(await claim(key))

    async def intent(self, key: str, endpoint: str, params_digest: str) -> None:
        """See `Journal.intent`."""
        await self._opened().intent(key, endpoint, params_digest)

    async def accepted(self, key: str, task_id: str) -> None:
        """See `Journal.accepted`."""
        await self._opened().accepted(key, task_id)

    async def ended(self, key: str, status: str) -> None:
        """See `Journal.ended`."""
        await self._opened().ended(key, status)

    async def get(self, key: str) -> JournalEntry | None:
        """See `Journal.get`."""
        return await self._opened().get(key)

    async def outstanding(self) -> list[JournalEntry]:
        """See `Journal.outstanding`."""
        return await self._opened().outstanding()


async def resume_counts(journal: Journal) -> tuple[int, int]:
    """``(to re-attach, of unknown outcome)``: the journal's entries without an end."""
    pending = await journal.outstanding()
    attach = sum(1 for entry in pending if entry.task_id is not None)
    return attach, len(pending) - attach
