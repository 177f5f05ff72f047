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
    return figures


def test_poller_vs_loops(tmp_path: Path) -> None:
    """Every variant completes every job and gets a full row."""
    figures = run_benchmark(
        "poller_vs_loops.py", tmp_path, "--jobs", "10", "--limits", "10", "--scale", "0.005"
    )
    assert figures["benchmark"] == "poller_vs_loops"
    (scenario,) = figures["scenarios"]
    names = [row["variant"] for row in scenario["rows"]]
    assert any(n.startswith("library") for n in names)
    assert {"loop 5s", "loop 2s", "loop backoff"} <= set(names)
    for row in scenario["rows"]:
        assert row["completed"] == 10, row
        assert row["queries"] >= 10
        for key in (
            "wall_s",
            "queries_per_job",
            "max_queries_1s",
            "delay_p50_ms",
            "delay_p95_ms",
            "client_cpu_s",
            "peak_mb",
        ):
            assert isinstance(row[key], int | float), key
    assert {v["target"].split(" ")[0] for v in scenario["targets"]} >= {"p50", "query"}


def test_overhead(tmp_path: Path) -> None:
    """Both clients run, and the CPU ratio is computed."""
    figures = run_benchmark(
        "overhead.py", tmp_path, "--jobs", "40", "--warmup", "5", "--repeat", "1"
    )
    assert [row["client"] for row in figures["rows"]] == ["bare aiohttp", "library"]
    for row in figures["rows"]:
        assert row["completed"] == 40, row
        assert row["requests_per_job"] == pytest.approx(2.0, abs=0.5)
        assert row["cpu_us_per_job"] > 0
        assert row["jobs_per_s"] > 0
    assert figures["cpu_ratio"] > 0
    assert isinstance(figures["target_met"], bool)


def test_scale(tmp_path: Path) -> None:
    """All jobs are outstanding at once, and memory, lag and rate are reported."""
    figures = run_benchmark(
        "scale.py", tmp_path, "--jobs", "100", "--median", "0.5", "--budget", "200"
    )["figures"]
    assert figures["completed"] == 100
    assert figures["max_outstanding_client"] == 100
    for key in (
        "memory_per_job_kb",
        "heap_per_job_kb",
        "max_queries_1s",
        "mean_query_rate_polling",
        "queries_per_job",
        "delay_p50_ms",
    ):
        assert isinstance(figures[key], int | float), key
    assert {"lag_p50_ms", "lag_p99_ms"} <= figures["lag_polling"].keys()


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
