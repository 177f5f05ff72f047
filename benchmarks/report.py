"""Markdown tables of one benchmark run, from the JSON the three scripts wrote.

Prints a block ready for the main README's performance section: the machine
line, the poller-vs-loops table of each scenario, the overhead table and the
scale figures, each with its targets met or missed.

Run: ``python benchmarks/report.py results/poller_vs_loops.json results/overhead.json
results/scale.json``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

JSONDict = dict[str, Any]

POLLER_COLUMNS = (
    ("variant", "variant", "{}"),
    ("q/job", "queries_per_job", "{:.2f}"),
    ("x fewer than loop 5s", "fewer_than_loop", "{:.2f}"),
    ("p50 delay ms", "delay_p50_ms", "{:.0f}"),
    ("p95 delay ms", "delay_p95_ms", "{:.0f}"),
    ("q/job 1st window", "queries_per_job_first_window", "{:.2f}"),
    ("q/job later", "queries_per_job_later", "{:.2f}"),
    ("max q/1s", "max_queries_1s", "{}"),
    ("client CPU s", "client_cpu_s", "{:.2f}"),
)
OVERHEAD_COLUMNS = (
    ("client", "client", "{}"),
    ("CPU us/job, min", "cpu_us_per_job", "{:.0f}"),
    ("CPU us/job, median", "cpu_us_per_job_median", "{:.0f}"),
    ("jobs/s, best", "jobs_per_s", "{:.0f}"),
    ("requests/job", "requests_per_job", "{:.2f}"),
    ("batches", "batches_measured", "{}"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def table(columns: Sequence[tuple[str, str, str]], rows: Sequence[Mapping[str, Any]]) -> str:
    """A markdown pipe table: first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(c[0] for c in columns) + " |"]
    lines.append("|" + "|".join([":---", *("---:" for _ in columns[1:])]) + "|")
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(k), f) for _, k, f in columns) + " |")
    return "\n".join(lines)


def _targets(verdicts: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        f"- {'met' if v['met'] else '**missed**'}: {v['variant']}: {v['target']} ({v['detail']})"
        for v in verdicts
    ]


def machine_line(info: Mapping[str, Any]) -> str:
    """The machine a run was made on, in one line."""
    return (
        f"cores: {info['cores']}, python {info['python']}, aiohttp {info['aiohttp']}, "
        f"runninghub_async {info['runninghub_async']} ({info['platform']})"
    )


def poller_section(data: JSONDict) -> list[str]:
    """One table per scenario, and its targets."""
    out: list[str] = []
    for scenario in data["scenarios"]:
        out += [
            f"**N = {scenario['jobs']} jobs, {scenario['limit']} in flight**",
            "",
            table(POLLER_COLUMNS, scenario["rows"]),
            "",
            *_targets(scenario["targets"]),
            "",
        ]
    return out


def overhead_section(data: JSONDict) -> list[str]:
    """The overhead table and its ratios."""
    s = data["settings"]
    lines = [
        f"**Client CPU per job** ({s['batches']} batches of {s['jobs']} zero-duration jobs "
        f"per process, {s['repeat']} processes per client, {s['concurrency']} in flight)",
        "",
        table(OVERHEAD_COLUMNS, data["rows"]),
        "",
        f"- {'met' if data['target_met'] else '**missed**'}: library CPU per job "
        f"x{data['cpu_ratio']:.2f} of bare aiohttp (minima; x{data['cpu_ratio_median']:.2f} "
        f"of the medians); target x{data['target_ratio']:g}",
    ]
    counted = data.get("instructions")
    if counted:
        lines.append(
            f"- instructions per job (callgrind, independent of memory layout): bare aiohttp "
            f"{counted['bare'] / 1e3:.0f} k, library {counted['library'] / 1e3:.0f} k "
            f"(x{counted['ratio']:.2f})"
        )
    return [*lines, ""]


def scale_section(data: JSONDict) -> list[str]:
    """The scale figures as a two-column table, and the targets."""
    f, s = data["figures"], data["settings"]
    lag_s, lag_p = f["lag_submitting"], f["lag_polling"]
    rows: list[tuple[str, str]] = [
        ("jobs outstanding when all submitted", f"{f['outstanding_client']:,}"),
        ("time to submit them all", f"{f['submit_phase_s']:.1f} s"),
        ("client RSS per outstanding job", f"{f['memory_per_job_kb']:.1f} KiB"),
    ]
    if "heap_per_job_kb" in f:
        rows.append(
            (
                "live Python heap per job (tracemalloc)",
                f"{f['heap_per_job_kb']:.1f} KiB (peak {f['heap_peak_per_job_kb']:.1f})",
            )
        )
    rows += [
        (
            "loop lag p50 / p99 / max, submitting",
            f"{lag_s['lag_p50_ms']:.1f} / {lag_s['lag_p99_ms']:.1f} / {lag_s['lag_max_ms']:.0f} ms",
        ),
    ]
    gc_s = f.get("gc_submitting")
    if gc_s is not None:
        rows += [
            (
                "full GC collections while submitting (longest)",
                f"{gc_s['full_collections']} ({gc_s['longest_full_ms']:.0f} ms)",
            ),
            ("loop lag p99 outside GC pauses, submitting", f"{f['lag_p99_outside_gc_ms']:.1f} ms"),
        ]
    rows += [
        (
            "loop lag p50 / p99 / max, polling",
            f"{lag_p['lag_p50_ms']:.1f} / {lag_p['lag_p99_ms']:.1f} / {lag_p['lag_max_ms']:.0f} ms",
        ),
        ("most queries in any 1 s (R)", f"{f['max_queries_1s']} ({f['budget']:g})"),
        ("mean query rate while polling", f"{f['mean_query_rate_polling']:.0f} /s"),
        ("queries per job", f"{f['queries_per_job']:.2f}"),
        (
            "detection delay p50 / p95",
            f"{f['delay_p50_ms'] / 1000:.2f} / {f['delay_p95_ms'] / 1000:.2f} s",
        ),
    ]
    said = {
        "lag_submitting": "loop lag p99 under 5 ms while submitting",
        "memory_per_job": "RSS per outstanding job under 12 KiB",
        "rate_at_bound": "query rate at the bound while polling (mean within 10% of R)",
        "never_above_bound": "no 1 s window above R",
    }
    return [
        f"**{f['jobs']:,} jobs outstanding on one client** (durations {s['duration']}, "
        f"`max_rate={s['budget']:g}`)",
        "",
        table(
            (("metric", "metric", "{}"), ("value", "value", "{}")),
            [{"metric": m, "value": v} for m, v in rows],
        ),
        "",
        *(
            f"- {'met' if met else '**missed**'}: {said.get(key, key)}"
            for key, met in data["targets"].items()
        ),
        "",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the markdown of whichever JSON files are given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="JSON written by the benchmarks' --json")
    args = parser.parse_args(argv)
    sections = {
        "poller_vs_loops": poller_section,
        "overhead": overhead_section,
        "scale": scale_section,
    }
    out: list[str] = []
    for path in args.files:
        data = json.loads(Path(path).read_text())
        if not out:
            out += [f"Machine: {machine_line(data['machine'])}.", ""]
        out += sections[data["benchmark"]](data)
    print("\n".join(out).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
