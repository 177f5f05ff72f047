"""Live progress of many jobs: a counter the work updates, and a display that shows it.

The display is ``rich`` (the ``cli`` extra) on a terminal; without a terminal (CI,
pipes) or without rich it prints a plain line about once a second::

    done 120/200 failed 0 running 20 queued 60 rate 9.5/s eta 8s

The work never prints directly while a display runs: it passes messages to
`Display.note`, which puts them above a live bar instead of through it.
"""

from __future__ import annotations

import collections
import math
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TextIO, TypeVar

import anyio

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

__all__ = [
    "Display",
    "PlainDisplay",
    "RichDisplay",
    "Tracker",
    "format_seconds",
    "make_display",
    "rich_console",
    "show_while",
]

T = TypeVar("T")
Clock = Callable[[], float]

# The rate is measured over this many recent seconds, so it follows changes of pace.
_RATE_WINDOW = 10.0


def format_seconds(seconds: float) -> str:
    """``"8s"``, ``"2m05s"``, ``"1h02m"``: short, for a progress line."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Tracker:
    """Counts of a batch's items by state, and the rate at which they finish.

    ``running`` counts tasks that exist on RunningHub and have not ended, so it
    never exceeds the account's slots; a task that ended moves to ``saving``
    while its files download.  ``queued`` is whatever is in no other state:
    items not read yet, waiting for a slot, or being submitted.
    """

    def __init__(self, total: int, *, clock: Clock = time.monotonic) -> None:
        self.total = total
        self.skipped = 0
        self.running = 0
        self.saving = 0
        self.done = 0
        self.failed = 0
        self._clock = clock
        self.started_at = clock()
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    @property
    def queued(self) -> int:
        """Items not yet running, finished or skipped."""
        busy = self.running + self.saving
        return max(0, self.total - self.skipped - busy - self.done - self.failed)

    @property
    def finished(self) -> int:
        """Items that need nothing more: done, failed or skipped."""
        return self.done + self.failed + self.skipped

    def skip(self) -> None:
        """An item was already done by an earlier run."""
        self.skipped += 1

    def start(self) -> None:
        """An item's task exists on RunningHub now (submitted or attached)."""
        self.running += 1

    def ended(self) -> None:
        """A running item's task ended on RunningHub; its files are being saved."""
        self.running -= 1
        self.saving += 1

    def saved(self, *, ok: bool) -> None:
        """An item that `ended` is finished."""
        self.saving -= 1
        if ok:
            self.done += 1
        else:
            self.failed += 1

    def finish(self, *, ok: bool, started: bool = True) -> None:
        """An item ended; *started* is False for items that failed before having a task."""
        if started:
            self.running -= 1
        if ok:
            self.done += 1
        else:
            self.failed += 1

    def elapsed(self) -> float:
        """Seconds since the tracker was made."""
        return self._clock() - self.started_at

    def sample(self) -> None:
        """Note the count of finished items now; the rate is measured between samples."""
        now = self._clock()
        self._samples.append((now, self.done + self.failed))
        while len(self._samples) > 2 and now - self._samples[1][0] >= _RATE_WINDOW:
            self._samples.popleft()

    def rate(self) -> float | None:
        """Items finished per second lately, or None before there is a measure."""
        if len(self._samples) < 2:
            return None
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        if t1 - t0 < 0.5:
            return None
        return (n1 - n0) / (t1 - t0)

    def eta(self) -> float | None:
        """Seconds until every item is finished at the current rate, or None if unknown."""
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        rate = self.rate()
        if not rate:
            return None
        return left / rate

    def stats_text(self) -> str:
        """Everything but the done count: ``failed 0 running 20 queued 60 rate 9.5/s eta 8s``."""
        parts = [f"failed {self.failed}", f"running {self.running}", f"queued {self.queued}"]
        if self.saving:
            parts.insert(2, f"saving {self.saving}")
        if self.skipped:
            parts.insert(0, f"skipped {self.skipped}")
        rate, eta = self.rate(), self.eta()
        parts.append(f"rate {rate:.1f}/s" if rate is not None else "rate -")
        parts.append(
            f"eta {format_seconds(eta)}" if eta is not None and math.isfinite(eta) else "eta -"
        )
        return " ".join(parts)

    def line(self) -> str:
        """The plain progress line."""
        return f"done {self.done}/{self.total} {self.stats_text()}"


class Display(Protocol):
    """Shows a `Tracker` while the work runs."""

    def start(self) -> None:
        """Begin showing progress."""
        ...

    async def run(self) -> None:
        """Refresh until cancelled (run it in the task group of the work)."""
        ...

    def note(self, text: str) -> None:
        """Print a message without disturbing the progress shown."""
        ...

    def stop(self) -> None:
        """Show the final state and stop."""
        ...


class PlainDisplay:
    """A plain line every *interval* seconds when something changed (and every minute anyway)."""

    def __init__(
        self, tracker: Tracker, *, out: TextIO | None = None, interval: float = 1.0
    ) -> None:
        self._tracker = tracker
        self._out = out
        self._interval = interval
        self._last = ""
        self._last_at = -math.inf

    def _print(self, text: str) -> None:
        print(text, file=self._out or sys.stdout, flush=True)

    def start(self) -> None:
        """Nothing to set up."""

    def tick(self) -> None:
        """Print the line if it changed, or if it has not been printed for a minute."""
        tracker = self._tracker
        tracker.sample()
        line = tracker.line()
        # The rate and eta drift every second; compare the counts only.
        counts = line.split(" rate ")[0]
        now = tracker.elapsed()
        if counts != self._last or now - self._last_at >= 60:
            self._print(line)
            self._last, self._last_at = counts, now

    async def run(self) -> None:
        """Tick every interval until cancelled."""
        while True:
            await anyio.sleep(self._interval)
            self.tick()

    def note(self, text: str) -> None:
        """Print *text* on a line of its own."""
        self._print(text)

    def stop(self) -> None:
        """Print the final line (unless it is the last one printed)."""
        self._tracker.sample()
        line = self._tracker.line()
        if line.split(" rate ")[0] != self._last:
            self._print(line)


class RichDisplay:
    """A live ``rich`` progress bar with the same counts as the plain line."""

    def __init__(self, tracker: Tracker, *, label: str, console: Console | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._tracker = tracker
        # auto_refresh=False: rich would otherwise refresh from a thread of its
        # own; the event loop drives the refreshes instead (`run`).
        self._progress: Progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=console,
            auto_refresh=False,
        )
        self._task: TaskID = self._progress.add_task(label, total=tracker.total, stats="")

    def start(self) -> None:
        """Show the bar."""
        self._progress.start()
        self.tick()

    def tick(self) -> None:
        """Update the bar from the tracker."""
        tracker = self._tracker
        tracker.sample()
        self._progress.update(
            self._task,
            total=tracker.total,
            completed=tracker.finished,
            stats=tracker.stats_text(),
        )
        self._progress.refresh()

    async def run(self) -> None:
        """Refresh five times a second until cancelled."""
        while True:
            await anyio.sleep(0.2)
            self.tick()

    def note(self, text: str) -> None:
        """Print *text* above the bar."""
        self._progress.console.print(text, markup=False, highlight=False)

    def stop(self) -> None:
        """Leave the final bar on screen."""
        self.tick()
        self._progress.stop()


def rich_console() -> Console | None:
    """A rich console for stdout when stdout is a terminal and rich is installed, else None."""
    if not sys.stdout.isatty():
        return None
    try:
        from rich.console import Console
    except ImportError:  # the cli extra is not installed: plain lines it is
        return None
    return Console()


def make_display(tracker: Tracker, *, label: str, console: Console | None) -> Display:
    """The rich display on *console*, or the plain one when there is none."""
    if console is None:
        return PlainDisplay(tracker)
    return RichDisplay(tracker, label=label, console=console)


async def show_while(display: Display, work: Callable[[], Awaitable[T]]) -> T:
    """Await *work* while *display* refreshes; show the final state whatever happens.

    Raises:
        Exception: whatever *work* raised (bare, not in an exception group).
    """
    outcome: list[T] = []
    error: list[Exception] = []
    display.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(display.run)
            try:
                outcome.append(await work())
            except Exception as exc:
                error.append(exc)
            tg.cancel_scope.cancel()
    finally:
        display.stop()
    if error:
        raise error[0]
    return outcome[0]
