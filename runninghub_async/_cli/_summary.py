"""The table printed at the end of a demo or batch: what ran, how fast, at what cost in requests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from .. import ClientStatistics
from ._engine import Engine
from ._progress import Tracker

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Summary", "percentile", "print_summary", "summarize"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The *q*-th percentile (0-100) of *values* by nearest rank, or None if there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@attrs.frozen(kw_only=True)
class Summary:
    """The numbers of one run.

    Attributes:
        jobs: items in the input.
        done: items finished with their files written in this run.
        failed: items that failed (in this run, or earlier and not retried).
        skipped: items an earlier run had finished.
        submitted: submits RunningHub accepted in this run.
        attached: tasks of an earlier run followed to their end.
        wall: seconds the run took.
        queries: ``/query`` requests the shared poller sent.
        requests: HTTP requests to the API, of every kind.
        p50: median seconds from acceptance to result, of jobs submitted in this run.
        p95: the 95th percentile of the same.
        rejections: concurrency and rate rejections the client absorbed.
        files: files written.
        cost: what the tasks that ended in this run cost, as RunningHub reported it.
        budget: ``--max-cost``, if given.
        reserved: the estimated cost of the items submitted under the budget.
    """

    jobs: int
    done: int
    failed: int
    skipped: int
    submitted: int
    attached: int
    wall: float
    queries: int
    requests: int
    p50: float | None
    p95: float | None
    rejections: int
    files: int
    cost: Decimal | None = None
    budget: Decimal | None = None
    reserved: Decimal | None = None

    @property
    def queries_per_job(self) -> float | None:
        """Queries per job followed (submitted or attached), or None if there were none."""
        followed = self.submitted + self.attached
        return self.queries / followed if followed else None

    def rows(self) -> list[tuple[str, str]]:
        """``(label, value)`` lines of the table."""
        jobs = f"{self.jobs} ({self.done} done, {self.failed} failed"
        jobs += f", {self.skipped} skipped as already done)" if self.skipped else ")"
        per_job = self.queries_per_job
        queries = f"{self.queries}" + (f" ({per_job:.2f} per job)" if per_job is not None else "")
        latency = (
            "-" if self.p50 is None or self.p95 is None else f"{self.p50:.2f} s / {self.p95:.2f} s"
        )
        followed = f"{self.submitted} submitted"
        if self.attached:
            followed += f", {self.attached} re-attached from an earlier run"
        return [
            ("jobs", jobs),
            ("tasks", followed),
            ("wall time", f"{self.wall:.1f} s"),
            ("query requests sent", queries),
            ("requests sent in all", str(self.requests)),
            ("job latency p50 / p95", latency),
            ("concurrency rejections absorbed", str(self.rejections)),
            ("files written", str(self.files)),
            ("cost", self._cost_text()),
        ]

    def _cost_text(self) -> str:
        text = "-" if self.cost is None else str(self.cost)
        if self.budget is not None:
            text += f" (estimated {self.reserved or 0} of --max-cost {self.budget})"
        return text


def summarize(*, engine: Engine, tracker: Tracker, stats: ClientStatistics, wall: float) -> Summary:
    """The summary of a finished run."""
    ledger = engine.ledger
    return Summary(
        jobs=tracker.total,
        done=tracker.done,
        failed=tracker.failed,
        skipped=tracker.skipped,
        submitted=ledger.submitted,
        attached=ledger.attached,
        wall=wall,
        queries=stats.poller.queries_sent,
        requests=stats.requests_sent,
        p50=percentile(ledger.latencies, 50),
        p95=percentile(ledger.latencies, 95),
        rejections=stats.limiter.rejections_absorbed,
        files=len(ledger.files),
        cost=ledger.cost,
        budget=engine.budget.limit if engine.budget is not None else None,
        reserved=engine.budget.spent if engine.budget is not None else None,
    )


def print_summary(summary: Summary, *, title: str, console: Console | None) -> None:
    """Print the table: with rich on a terminal, else as aligned plain text."""
    rows = summary.rows()
    if console is not None:
        from rich.table import Table

        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for label, value in rows:
            table.add_row(label, value)
        console.print(table)
        return
    width = max(len(label) for label, _ in rows)
    print(title)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
