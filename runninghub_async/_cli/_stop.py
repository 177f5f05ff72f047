"""Ctrl-C as the commands see it: a first request to stop cleanly, then a forced stop.

The signal is turned into events instead of a ``KeyboardInterrupt`` so that each
command decides what stopping means (a batch lets a submit already on the wire
learn its task id before it stops, then says how to resume).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.abc

__all__ = ["Interrupted", "Stop", "unless_stopped", "watch_signals"]

T = TypeVar("T")


class Interrupted(Exception):
    """A command stopped because the user asked it to; the message says what to do next."""

    def __init__(self, message: str = "interrupted", *, status: int = 130) -> None:
        super().__init__(message)
        self.status = status


class Stop:
    """The user's requests to stop: ``requested`` on the first Ctrl-C, ``forced`` on the second."""

    def __init__(self) -> None:
        self.requested = anyio.Event()
        self.forced = anyio.Event()
        self.signal_number = signal.SIGINT

    def press(self, signal_number: int = signal.SIGINT) -> None:
        """One more Ctrl-C (or SIGTERM)."""
        if self.requested.is_set():
            self.forced.set()
        else:
            self.signal_number = signal.Signals(signal_number)
            self.requested.set()

    @property
    def exit_status(self) -> int:
        """The conventional status of a process stopped by the signal (130 for Ctrl-C)."""
        return 128 + int(self.signal_number)


def can_watch_signals() -> bool:
    """Signal handlers can be installed only in the main thread, and not on Windows."""
    return sys.platform != "win32" and threading.current_thread() is threading.main_thread()


async def watch_signals(
    stop: Stop, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Turn SIGINT and SIGTERM into `Stop.press` until cancelled."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for number in signals:
            stop.press(number)


async def unless_stopped(event: anyio.Event, work: Callable[[], Awaitable[T]]) -> T:
    """Await *work*, cancelling it if *event* is set first.

    Raises:
        Interrupted: *event* was set before *work* finished.
        Exception: whatever *work* raised.
    """
    outcome: list[T] = []
    error: list[Exception] = []

    async def watch(scope: anyio.CancelScope) -> None:
        await event.wait()
        scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch, tg.cancel_scope)
        try:
            outcome.append(await work())
        except Exception as exc:
            # Kept out of the task group, so the caller gets it bare, not in a group.
            error.append(exc)
        tg.cancel_scope.cancel()
    if error:
        raise error[0]
    if not outcome:
        raise Interrupted()
    return outcome[0]
