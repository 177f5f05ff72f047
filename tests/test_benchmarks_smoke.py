"""The benchmark scripts run end to end with tiny sizes and write the JSON they promise.

They are not benchmarks here: sizes and time scale are cut so the three scripts
take a few seconds together; only the exit status and the JSON shape are checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MACHINE_KEYS = {"cores", "python", "aiohttp", "runninghub_async"}


def run_benchmark(script: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run ``benchmarks/<script>`` with *args* and ``--json``; return the JSON it wrote."""
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cores: " in done.stdout
    figures: dict[str, Any] = json.loads(out.read_text())
    assert figures["machine"].keys() >= MACHINE_KEYS
    if script != "multiprocess.py":
        report = subprocess.run(
            [sys.executable, str(BENCHMARKS / "report.py"), str(out)],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert report.returncode == 0, report.stderr
        assert report.stdout.startswith("Machine: cores: ")
        assert "\n| " in report.stdout  # a markdown table
    return figures


def test_poller_vs_loops(tmp_path: Path) -> None:
    """Every variant run completes every job and gets a full row; the limit is computed."""
    only = "library default,library webhook,library R=500/s,loop 5s"
    figures = run_benchmark(
        "poller_vs_loops.py",
        tmp_path,
        *("--jobs", "10", "--limits", "10", "--scale", "0.005", "--limit-grid", "5"),
        *("--only", only),
    )
    assert figures["benchmark"] == "poller_vs_loops"
    (scenario,) = figures["scenarios"]
    rows = {row["variant"]: row for row in scenario["rows"]}
    assert list(rows) == [*only.split(","), "limit (DP, computed)"]
    for name, row in rows.items():
        for key in ("queries_per_job", "fewer_than_loop", "delay_p50_ms", "delay_p95_ms"):
            assert isinstance(row[key], int | float), (name, key)
        if name.startswith("limit"):
            continue
        assert row["completed"] == 10, row
        assert row["queries"] >= 10
        for key in ("wall_s", "max_queries_1s", "client_cpu_s", "peak_mb"):
            assert isinstance(row[key], int | float), key
    assert rows["loop 5s"]["fewer_than_loop"] == 1.0
    # Every job's callback reached the receiver in the client's process.
    assert rows["library webhook"]["webhooks"] == 10
    limit = rows["limit (DP, computed)"]
    assert 0 < limit["queries_per_job"] < rows["loop 5s"]["queries_per_job"]
    assert limit["delay_p95_ms"] <= limit["loop_p95_ms"] + 1e-6
    targets = {(v["variant"], v["target"].split(" ")[0]) for v in scenario["targets"]}
    assert {("library default", ">="), ("library webhook", "<=")} <= targets
    assert ("library R=500/s", "query") in targets


def test_overhead(tmp_path: Path) -> None:
    """Both clients run every batch; minima, medians and their ratios are computed."""
    figures = run_benchmark(
        "overhead.py",
        tmp_path,
        *("--jobs", "40", "--batches", "2", "--warmup", "5", "--repeat", "1"),
    )
    assert [row["client"] for row in figures["rows"]] == ["bare aiohttp", "library"]
    for row in figures["rows"]:
        assert row["completed"] == 40, row
        assert row["batches_measured"] == 2
        assert row["requests_per_job"] == pytest.approx(2.0, abs=0.5)
        assert 0 < row["cpu_us_per_job"] <= row["cpu_us_per_job_median"]
        assert row["jobs_per_s"] > 0
    bare, library = figures["rows"]
    assert figures["cpu_ratio"] == pytest.approx(library["cpu_us_per_job"] / bare["cpu_us_per_job"])
    assert figures["cpu_ratio_median"] > 0
    assert isinstance(figures["target_met"], bool)


def test_scale(tmp_path: Path) -> None:
    """All jobs are outstanding at once, and memory, lag and rate are reported."""
    figures = run_benchmark(
        "scale.py",
        tmp_path,
        *("--jobs", "100", "--median", "0.1", "--scale", "0.0025"),
        "--budget",
        "500",
    )["figures"]
    assert figures["completed"] == 100
    assert figures["outstanding_client"] == 100
    for key in (
        "memory_per_job_kb",
        "heap_per_job_kb",
        "max_queries_1s",
        "mean_query_rate_polling",
        "queries_per_job",
        "delay_p50_ms",
    ):
        assert isinstance(figures[key], int | float), key
    for phase in ("lag_submitting", "lag_polling"):
        assert {"lag_p50_ms", "lag_p99_ms"} <= figures[phase].keys()


def test_scale_with_jobs_that_end_while_submitting(tmp_path: Path) -> None:
    """Jobs that end before the last submit is answered do not keep the run waiting."""
    # 1 ms jobs, first checked a few ms after submit: some end before the 300th submit.
    args = ("--jobs", "300", "--median", "0.001", "--scale", "0.0002", "--budget", "5000")
    figures = run_benchmark("scale.py", tmp_path, *args)["figures"]
    assert figures["completed"] == 300
    assert min(figures["outstanding_client"], figures["heap_outstanding"]) < 300


def test_multiprocess(tmp_path: Path) -> None:
    """Both modes run every job over several processes; with Redis the limits hold."""
    figures = run_benchmark(
        "multiprocess.py",
        tmp_path,
        *("--processes", "2", "--jobs", "6", "--limit", "3", "--median", "0.05"),
    )
    assert [row["mode"] for row in figures["rows"]] == ["redis", "local"]
    for row in figures["rows"]:
        assert row["completed"] == 12, row
        assert row["submits"] >= 12
    shared = figures["rows"][0]
    assert shared["max_running"] <= 3
    assert shared["max_1s"] <= shared["rate"]
