"""The event-loop thread behind ``runninghub_async.sync.RunningHub``, and calls across it.

`PortalClient` is the base of the blocking client: it owns the async client, the
anyio blocking portal (an event loop in a thread of its own) and their shared
lifecycle (unopened, open, closed), and it carries calls from the caller's thread
to that loop and their results, errors, Ctrl-C and cancellation back.  It lives
apart from ``sync`` so that module holds only the typed public surface.
"""

from __future__ import annotations

import contextlib
import enum
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from concurrent.futures import CancelledError as FutureCancelledError
from concurrent.futures import Future
from types import TracebackType
from typing import Self, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._client import RunningHub as AsyncRunningHub
from ._errors import ClientClosedError

__all__ = ["PortalClient", "State"]

_T = TypeVar("_T")

# A blocked lock wait is interrupted by Ctrl-C on POSIX, not on Windows: there the
# wait is sliced so that KeyboardInterrupt gets a chance to be raised.
_WAIT_SLICE = 0.25 if sys.platform == "win32" else None


class State(enum.Enum):
    """Where a blocking client is in its life: it is opened at most once."""

    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class _End:
    """Marks the end of an async iterator crossing the portal."""


_END = _End()


async def _next_or_end(iterator: AsyncIterator[_T]) -> _T | _End:
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return _END


def _stop_portal(portal: BlockingPortal) -> None:
    # After the client has closed, whatever still runs in the portal is a call
    # nobody can complete: cancel it rather than wait for it.
    with contextlib.suppress(RuntimeError):
        portal.call(portal.stop, True)


class PortalClient:
    """An async client run on an event loop in a thread of its own, opened once.

    The first ``with`` (or the first call) starts the thread and enters the async
    client there; ``close()`` leaves it and ends the thread.  Subclasses forward
    their public methods through ``_call``, ``_call_sync`` and ``_iterate``.
    """

    def __init__(self, client: AsyncRunningHub) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._state = State.UNOPENED
        self._portal: BlockingPortal | None = None
        self._stack: contextlib.ExitStack | None = None

    # -- lifecycle ----------------------------------------------------------------

    def __enter__(self) -> Self:
        with self._lock:
            if self._state is State.CLOSED:
                raise RuntimeError("a RunningHub client can be opened only once; make a new one")
            if self._state is State.UNOPENED:
                self._open_locked()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the client and end its thread; waits still running get ``ClientClosedError``.

        Closing twice, or a client never started, is fine.
        """
        with self._lock:
            stack, self._stack = self._stack, None
            self._state = State.CLOSED
        if stack is not None:
            stack.close()

    def __del__(self) -> None:
        # No I/O here: a finalizer may run on any thread, the portal's own included.
        if getattr(self, "_state", None) is State.OPEN:
            warnings.warn(
                f"unclosed {self!r}: call close() or use `with`",
                ResourceWarning,
                stacklevel=1,
                source=self,
            )

    def _open_locked(self) -> None:
        with contextlib.ExitStack() as stack:
            try:
                portal = stack.enter_context(
                    start_blocking_portal("asyncio", name="runninghub-sync")
                )
                stack.callback(_stop_portal, portal)
                # Entered and left by one task on the portal's loop, as the async
                # client's task group requires.
                stack.enter_context(portal.wrap_async_context_manager(self._client))
            except BaseException:
                self._state = State.CLOSED  # the async client cannot be opened again
                raise
            self._portal = portal
            self._stack = stack.pop_all()
            self._state = State.OPEN

    # -- calls across the portal ----------------------------------------------------

    def _running_portal(self) -> BlockingPortal:
        if self._state is not State.OPEN:
            with self._lock:
                if self._state is State.UNOPENED:
                    self._open_locked()
                elif self._state is State.CLOSED:
                    raise ClientClosedError("the client is closed")
        assert self._portal is not None
        return self._portal

    def _wait(self, future: Future[_T]) -> _T:
        try:
            while True:
                try:
                    return future.result(_WAIT_SLICE)
                except TimeoutError:
                    if future.done():
                        raise
        except FutureCancelledError:
            if self._state is State.CLOSED:
                raise ClientClosedError("the client closed during the call") from None
            raise
        except BaseException:
            # KeyboardInterrupt (or any exception of this thread): cancel the call in
            # the loop so that nothing is left running for a caller who is gone.
            # A finished call makes this a no-op.
            future.cancel()
            raise

    def _call(self, fn: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``await fn()`` on the client's loop and return its result here."""
        portal = self._running_portal()
        try:
            future = portal.start_task_soon(fn)
        except RuntimeError:
            if self._state is State.CLOSED:
                raise ClientClosedError("the client is closed") from None
            raise
        return self._wait(future)

    def _call_sync(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn()`` on the client's loop (its state belongs to that thread)."""

        async def call() -> _T:
            return fn()

        return self._call(call)

    def _iterate(self, make: Callable[[], AsyncIterator[_T]]) -> Generator[_T, None, None]:
        """Hand the items of an async iterator made on the loop to this thread, one by one."""
        iterator = self._call_sync(make)
        between_items = False
        try:
            while True:
                between_items = False
                item = self._call(lambda: _next_or_end(iterator))
                if isinstance(item, _End):
                    return
                between_items = True
                yield item
        finally:
            # Closing is needed only when the caller stopped between items (break,
            # close(), an error in the loop body).  A Ctrl-C during an item cancelled
            # the iterator already, which ends it.
            aclose = getattr(iterator, "aclose", None)
            if between_items and aclose is not None and self._state is State.OPEN:
                # Also a generator collected on the portal's own thread (RuntimeError):
                # its loop then finalizes the async one.
                with contextlib.suppress(ClientClosedError, RuntimeError):
                    self._call(aclose)
