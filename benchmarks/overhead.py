"""Client CPU per job: the library against bare aiohttp making the same HTTP calls.

Every job has zero duration on the fake, so each needs exactly one submit and
one query that finds it finished.  ``library`` runs ``RunningHub.run`` per job
(validation, limiter, shared poller, cattrs models); ``bare aiohttp`` POSTs the
same submit and query bodies on one ``aiohttp.ClientSession`` and parses the
JSON answers.  Both keep ``--concurrency`` jobs in flight over as many
connections, and both first run ``--warmup`` jobs that are not measured.

Each run is a fresh client process against a fresh fake process, and measures
``--batches`` batches of ``--jobs`` jobs one after the other; the two clients
alternate ``--repeat`` times.  CPU time on a shared machine varies by +-30% from
one batch to the next (other processes evict caches and share the cores), and
noise only ever adds time: the table shows each client's *minimum* CPU per job
over all its batches, the best estimate of its own cost, and the median beside
it.  Reported: client CPU per job (``time.process_time`` of the client
process), jobs per second, requests per job (counted by the fake), and the
library/bare ratio of CPU per job (the design target is at most 1.35), of the
minima and of the medians.

CPU time also depends on where code lands in memory: on this machine the bare
client's own CPU per job moves by up to ~20% from one build of the (imported,
unused) library to the next.  ``--instructions`` adds a layout-independent
figure: instructions per job counted by valgrind's callgrind (the difference
between a run of ``--jobs`` and one of ``3 * --jobs`` jobs, so start-up cancels),
when valgrind is installed.

Run: ``python benchmarks/overhead.py [--jobs 1000] [--batches 5] [--instructions]
[--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import aiohttp
from _common import (
    API_KEY,
    Column,
    JSONDict,
    Meter,
    Outcomes,
    add_common_arguments,
    auth_headers,
    fake_server,
    job_params,
    machine_info,
    print_header,
    print_table,
    query_url,
    run_recorded,
    run_worker,
    submit_url,
    worker_entry,
    write_json,
)

from runninghub_async import PollPolicy, RunningHub

TARGET_RATIO = 1.35
# Zero-duration jobs: check at once, and again soon should the fake lag behind.
POLICY = PollPolicy(initial_delay=0.0, min_interval=0.005, max_interval=0.05)


async def _measure(
    one: Callable[[int], Coroutine[Any, Any, None]], spec: JSONDict, outcomes: Outcomes
) -> JSONDict:
    """Run the warm-up jobs, then meter each measured batch's CPU and wall time."""

    async def batch(first: int, count: int) -> None:
        async with asyncio.TaskGroup() as tg:
            for index in range(first, first + count):
                tg.create_task(one(index))

    await batch(0, spec["warmup"])
    batches: list[JSONDict] = []
    first = spec["warmup"]
    for _ in range(spec["batches"]):
        done = len(outcomes.returned_at)
        meter = Meter()
        meter.start()
        await batch(first, spec["jobs"])
        figures = meter.stop()
        batches.append({**figures, "completed": len(outcomes.returned_at) - done})
        first += spec["jobs"]
    return {"batches": batches, "errors": outcomes.errors}


async def _library(spec: JSONDict) -> JSONDict:
    outcomes = Outcomes()
    async with RunningHub(
        api_key=API_KEY,
        base_url=spec["base_url"],
        max_in_flight=spec["concurrency"],
        requests_per_second=None,
        poll=POLICY,
        max_connections=spec["concurrency"],
        seed=spec["seed"],
    ) as client:

        async def one(index: int) -> None:
            await run_recorded(client, index, outcomes)

        return await _measure(one, spec, outcomes)


async def _bare(spec: JSONDict) -> JSONDict:
    outcomes = Outcomes()
    s_url, q_url = submit_url(spec["base_url"]), query_url(spec["base_url"])
    slots = asyncio.Semaphore(spec["concurrency"])
    connector = aiohttp.TCPConnector(limit=spec["concurrency"])
    async with aiohttp.ClientSession(connector=connector, headers=auth_headers()) as session:

        async def one(index: int) -> None:
            async with slots:
                try:
                    async with session.post(s_url, json=job_params(index)) as response:
                        body = await response.json()
                    task_id = body["taskId"]
                    while True:
                        async with session.post(q_url, json={"taskId": task_id}) as response:
                            body = await response.json()
                        if body["status"] in ("SUCCESS", "FAILED", "CANCEL"):
                            break
                        await asyncio.sleep(POLICY.min_interval)
                except (aiohttp.ClientError, KeyError, ValueError) as exc:
                    outcomes.failed(exc)
                else:
                    outcomes.done(task_id)

        return await _measure(one, spec, outcomes)


async def run_client(spec: JSONDict) -> JSONDict:
    """The worker: the measured batches of one client."""
    return await (_library(spec) if spec["client"] == "library" else _bare(spec))


def measure(client: str, args: argparse.Namespace) -> JSONDict:
    """One run: a fresh fake and a fresh client process; per batch, CPU and wall per job."""
    with fake_server(duration="0", concurrency_limit=None, seed=args.seed) as fake:
        spec = {
            "client": client,
            "base_url": fake.base_url,
            "jobs": args.jobs,
            "batches": args.batches,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "seed": args.seed,
        }
        before = fake.stats()
        result = run_worker(__file__, spec)
        after = fake.stats()
    total = args.jobs * args.batches + args.warmup
    return {
        "batches": [
            {
                "cpu_us_per_job": b["cpu_s"] / args.jobs * 1e6,
                "jobs_per_s": args.jobs / b["wall_s"],
                "completed": b["completed"],
            }
            for b in result["batches"]
        ],
        "queries_per_job": (after["queries"] - before["queries"]) / total,
        "requests_per_job": (after["requests_total"] - before["requests_total"]) / total,
        "errors": result["errors"],
    }


def _collected(client: str, base_url: str, jobs: int, args: argparse.Namespace) -> int:
    """Instructions callgrind counts for one worker running *jobs* jobs of *client*."""
    spec = {
        "client": client,
        "base_url": base_url,
        "jobs": jobs,
        "batches": 1,
        "warmup": 50,
        "concurrency": args.concurrency,
        "seed": args.seed,
    }
    with tempfile.TemporaryDirectory(prefix="rh-bench-") as tmp:
        spec_path, out_path = f"{tmp}/spec.json", f"{tmp}/out.json"
        with open(spec_path, "w") as file:
            json.dump(spec, file)
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg"]
        command += [sys.executable, __file__, "--worker", spec_path, "--worker-out", out_path]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise RuntimeError(f"callgrind run failed:\n{done.stderr[-2000:]}")
        return int(found.group(1))


def instructions(args: argparse.Namespace) -> JSONDict:
    """Instructions per job of each client, by callgrind (start-up cancels out)."""
    small, large = args.jobs, 3 * args.jobs
    per_job: JSONDict = {}
    with fake_server(duration="0", concurrency_limit=None, seed=args.seed) as fake:
        for client in ("bare", "library"):
            counts = [_collected(client, fake.base_url, n, args) for n in (small, large)]
            per_job[client] = (counts[1] - counts[0]) / (large - small)
    return {**per_job, "ratio": per_job["library"] / per_job["bare"]}


def summarise(name: str, runs: Sequence[JSONDict]) -> JSONDict:
    """One client's row: the minimum and median over every batch of every run."""
    batches = [b for run in runs for b in run["batches"]]
    cpu = [b["cpu_us_per_job"] for b in batches]
    errors: dict[str, int] = {}
    for run in runs:
        for kind, count in run["errors"].items():
            errors[kind] = errors.get(kind, 0) + count
    return {
        "client": name,
        "cpu_us_per_job": min(cpu),
        "cpu_us_per_job_median": statistics.median(cpu),
        "cpu_us_per_job_max": max(cpu),
        "jobs_per_s": max(b["jobs_per_s"] for b in batches),
        "jobs_per_s_median": statistics.median(b["jobs_per_s"] for b in batches),
        "requests_per_job": statistics.fmean(r["requests_per_job"] for r in runs),
        "queries_per_job": statistics.fmean(r["queries_per_job"] for r in runs),
        "completed": min(b["completed"] for b in batches),
        "batches_measured": len(batches),
        "errors": errors,
        "runs": runs,
    }


COLUMNS = (
    Column("client", "client"),
    Column("CPU us/job min", "cpu_us_per_job", "{:.0f}"),
    Column("median", "cpu_us_per_job_median", "{:.0f}"),
    Column("max", "cpu_us_per_job_max", "{:.0f}"),
    Column("jobs/s best", "jobs_per_s", "{:.0f}"),
    Column("median", "jobs_per_s_median", "{:.0f}"),
    Column("requests/job", "requests_per_job", "{:.2f}"),
    Column("batches", "batches_measured"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Alternate bare and library runs, print minima and medians and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs per measured batch")
    parser.add_argument("--batches", type=int, default=5, help="measured batches per run")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured jobs first")
    parser.add_argument("--concurrency", type=int, default=50, help="jobs in flight")
    parser.add_argument("--repeat", type=int, default=3, help="runs (processes) per client")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions per job with valgrind's callgrind (~1 min)",
    )
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_entry(args, run_client)

    info = machine_info()
    print_header("overhead: client CPU per job, library vs bare aiohttp", info)
    print(
        f"{args.batches} batches of {args.jobs} zero-duration jobs per run (after "
        f"{args.warmup} warm-up), {args.concurrency} in flight; {args.repeat} alternating "
        "runs per client; minimum and median over all batches"
    )
    runs: dict[str, list[JSONDict]] = {"bare aiohttp": [], "library": []}
    for _ in range(args.repeat):
        runs["bare aiohttp"].append(measure("bare", args))
        runs["library"].append(measure("library", args))
    rows = [summarise(name, results) for name, results in runs.items()]
    bare, library = rows
    ratio = library["cpu_us_per_job"] / bare["cpu_us_per_job"]
    ratio_median = library["cpu_us_per_job_median"] / bare["cpu_us_per_job_median"]
    throughput = library["jobs_per_s"] / bare["jobs_per_s"]
    print()
    print_table(COLUMNS, rows)
    for row in rows:
        if row["errors"] or row["completed"] != args.jobs:
            print(f"  ! {row['client']}: {row['completed']}/{args.jobs} done, {row['errors']}")
    met = ratio <= TARGET_RATIO
    print(
        f"library/bare CPU per job: x{ratio:.2f} (minima), x{ratio_median:.2f} (medians); "
        f"jobs per second x{throughput:.2f} (best)\n"
        f"  [{'met' if met else 'MISSED'}] CPU per job within x{TARGET_RATIO:g} of bare "
        "aiohttp (minima)"
    )
    counted: JSONDict | None = None
    if args.instructions:
        if shutil.which("valgrind") is None:
            print("  (--instructions: valgrind is not installed)")
        else:
            counted = instructions(args)
            print(
                f"instructions per job (callgrind): bare aiohttp {counted['bare'] / 1e3:.0f} k, "
                f"library {counted['library'] / 1e3:.0f} k: x{counted['ratio']:.2f}"
            )
    write_json(
        args.json,
        {
            "benchmark": "overhead",
            "instructions": counted,
            "machine": info,
            "settings": {
                "jobs": args.jobs,
                "batches": args.batches,
                "warmup": args.warmup,
                "concurrency": args.concurrency,
                "repeat": args.repeat,
                "seed": args.seed,
                "poll": {"initial_delay": 0.0, "min_interval": 0.005, "max_interval": 0.05},
            },
            "rows": rows,
            "cpu_ratio": ratio,
            "cpu_ratio_median": ratio_median,
            "throughput_ratio": throughput,
            "target_ratio": TARGET_RATIO,
            "target_met": met,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
