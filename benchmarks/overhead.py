"""Client CPU per job: the library against bare aiohttp making the same HTTP calls.

Every job has zero duration on the fake, so each needs exactly one submit and
one query that finds it finished.  ``library`` runs ``RunningHub.run`` per job
(validation, limiter, shared poller, cattrs models); ``bare aiohttp`` POSTs the
same submit and query bodies on one ``aiohttp.ClientSession`` and parses the
JSON answers.  Both keep ``--concurrency`` jobs in flight over as many
connections, and both first run ``--warmup`` jobs that are not measured.

Each run is a fresh client process against a fresh fake process; the two
clients alternate ``--repeat`` times and the table shows the median run.
Reported: client CPU per job (``time.process_time`` of the client process),
jobs per second, requests per job (counted by the fake), and the library/bare
ratio of CPU per job (the design target is at most 1.5).

Run: ``python benchmarks/overhead.py [--jobs 2000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
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

TARGET_RATIO = 1.5
# Zero-duration jobs: check at once, and again soon should the fake lag behind.
POLICY = PollPolicy(initial_delay=0.0, min_interval=0.005, max_interval=0.05)


async def _measure(one: Callable[[int], Coroutine[Any, Any, None]], spec: JSONDict) -> JSONDict:
    """Run the warm-up jobs, then meter the CPU and wall time of the measured ones."""

    async def batch(first: int, count: int) -> None:
        async with asyncio.TaskGroup() as tg:
            for index in range(first, first + count):
                tg.create_task(one(index))

    await batch(0, spec["warmup"])
    meter = Meter()
    meter.start()
    await batch(spec["warmup"], spec["jobs"])
    figures: JSONDict = meter.stop()
    return figures


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

        figures = await _measure(one, spec)
    return {**figures, "completed": len(outcomes.returned_at) - spec["warmup"], **_errors(outcomes)}


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

        figures = await _measure(one, spec)
    return {**figures, "completed": len(outcomes.returned_at) - spec["warmup"], **_errors(outcomes)}


def _errors(outcomes: Outcomes) -> JSONDict:
    return {"errors": outcomes.errors}


async def run_client(spec: JSONDict) -> JSONDict:
    """The worker: one measured batch with one client."""
    return await (_library(spec) if spec["client"] == "library" else _bare(spec))


def measure(client: str, args: argparse.Namespace) -> JSONDict:
    """One run: a fresh fake and a fresh client process."""
    with fake_server(duration="0", concurrency_limit=None, seed=args.seed) as fake:
        spec = {
            "client": client,
            "base_url": fake.base_url,
            "jobs": args.jobs,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "seed": args.seed,
        }
        before = fake.stats()
        result = run_worker(__file__, spec)
        after = fake.stats()
    total = args.jobs + args.warmup
    return {
        "client": client,
        "cpu_s": result["cpu_s"],
        "wall_s": result["wall_s"],
        "cpu_us_per_job": result["cpu_s"] / args.jobs * 1e6,
        "jobs_per_s": args.jobs / result["wall_s"],
        "queries_per_job": (after["queries"] - before["queries"]) / total,
        "requests_per_job": (after["requests_total"] - before["requests_total"]) / total,
        "completed": result["completed"],
        "errors": result["errors"],
    }


COLUMNS = (
    Column("client", "client"),
    Column("CPU us/job", "cpu_us_per_job", "{:.0f}"),
    Column("jobs/s", "jobs_per_s", "{:.0f}"),
    Column("requests/job", "requests_per_job", "{:.2f}"),
    Column("CPU s", "cpu_s", "{:.2f}"),
    Column("wall s", "wall_s", "{:.2f}"),
    Column("runs (CPU us/job)", "runs"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Alternate bare and library runs, print the medians and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="measured jobs per run")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured jobs first")
    parser.add_argument("--concurrency", type=int, default=50, help="jobs in flight")
    parser.add_argument("--repeat", type=int, default=3, help="runs per client")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_entry(args, run_client)

    info = machine_info()
    print_header("overhead: client CPU per job, library vs bare aiohttp", info)
    print(
        f"{args.jobs} zero-duration jobs per run (after {args.warmup} warm-up), "
        f"{args.concurrency} in flight, median of {args.repeat} alternating runs"
    )
    runs: dict[str, list[JSONDict]] = {"bare aiohttp": [], "library": []}
    for _ in range(args.repeat):
        runs["bare aiohttp"].append(measure("bare", args))
        runs["library"].append(measure("library", args))

    rows: list[JSONDict] = []
    for name, results in runs.items():
        middle = sorted(results, key=lambda r: r["cpu_us_per_job"])[len(results) // 2]
        rows.append(
            {
                **middle,
                "client": name,
                "cpu_us_per_job": statistics.median(r["cpu_us_per_job"] for r in results),
                "jobs_per_s": statistics.median(r["jobs_per_s"] for r in results),
                "runs": " ".join(f"{r['cpu_us_per_job']:.0f}" for r in results),
                "all_runs": results,
            }
        )
    bare, library = rows
    ratio = library["cpu_us_per_job"] / bare["cpu_us_per_job"]
    throughput = library["jobs_per_s"] / bare["jobs_per_s"]
    print()
    print_table(COLUMNS, rows)
    for row in rows:
        if row["errors"] or row["completed"] != args.jobs:
            print(f"  ! {row['client']}: {row['completed']}/{args.jobs} done, {row['errors']}")
    met = ratio <= TARGET_RATIO
    print(
        f"library/bare: CPU per job x{ratio:.2f}, jobs per second x{throughput:.2f}  "
        f"[{'met' if met else 'MISSED'}] target: CPU per job within x{TARGET_RATIO:g}"
    )
    write_json(
        args.json,
        {
            "benchmark": "overhead",
            "machine": info,
            "settings": {
                "jobs": args.jobs,
                "warmup": args.warmup,
                "concurrency": args.concurrency,
                "repeat": args.repeat,
                "seed": args.seed,
                "poll": {"initial_delay": 0.0, "min_interval": 0.005, "max_interval": 0.05},
            },
            "rows": rows,
            "cpu_ratio": ratio,
            "throughput_ratio": throughput,
            "target_met": met,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
