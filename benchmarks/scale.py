"""10,000 jobs outstanding at once on one client and its one poller.

One client submits ``--jobs`` jobs at once (one caller task per job awaiting
``RunningHub.run``) to a fake whose concurrency limit is raised to match and
whose jobs last long enough (log-normal, median ``--median`` s) for all of them
to be outstanding together.  The poller runs under a query budget
``PollPolicy(max_rate=R)`` with the scaled default cadence (times x ``--scale``).

Reported: client memory per outstanding job (RSS growth from before the first
submit to the moment every job is outstanding, divided by the jobs; it includes
each caller's task) and, in a second run under tracemalloc, the live Python
heap per outstanding job and which package allocated it; event-loop lag
p50/p99 (a task sleeping 10 ms records its overshoot) while submitting and
while polling; the query rate observed (client-side stamps: the most queries in
any 1 s, and the mean while polling) against R; queries per job, detection
delay, client CPU, and the tasks the client runs besides the callers (one
poller loop plus its checks in flight).

Run: ``python benchmarks/scale.py [--jobs 10000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import sys
import time
import tracemalloc
from collections.abc import Sequence

from _common import (
    API_KEY,
    DEFAULT_SCALE,
    ENDPOINT,
    Column,
    JSONDict,
    LagSampler,
    Meter,
    Outcomes,
    QueryRecorder,
    add_common_arguments,
    delays_ms,
    fake_server,
    job_params,
    machine_info,
    print_header,
    print_table,
    rss_bytes,
    run_recorded,
    run_worker,
    worker_entry,
    write_json,
)

from runninghub_async import PollPolicy, RunningHub, RunningHubError

# What the library assumes of nano-banana-pro before learning (_cadence.prior_for).
TYPICAL_SECONDS = 40.0


def policy(scale: float, budget: float) -> dict[str, float]:
    """PollPolicy's defaults with times scaled, under a budget of *budget* queries/s."""
    d = PollPolicy()
    return {
        "target_delay": d.target_delay * scale,
        "typical_duration": TYPICAL_SECONDS * scale,
        "min_interval": d.min_interval * scale,
        "max_interval": d.max_interval * scale,
        "not_found_grace": d.not_found_grace * scale,
        "max_rate": budget,
    }


def _client(spec: JSONDict) -> RunningHub:
    """The client both modes measure: every job may be outstanding at once."""
    return RunningHub(
        api_key=API_KEY,
        base_url=spec["base_url"],
        max_in_flight=spec["jobs"],
        requests_per_second=None,
        poll=PollPolicy(**spec["poll"]),
        max_connections=spec["connections"],
        seed=spec["seed"],
    )


async def run_scale(spec: JSONDict) -> JSONDict:
    """The worker: submit every job at once, watch memory, lag and queries until all end."""
    jobs = spec["jobs"]
    outcomes, recorder, meter, lag = Outcomes(), QueryRecorder(), Meter(), LagSampler(0.01)
    plateau: JSONDict = {}
    marks: dict[str, float] = {}
    lag.start()
    meter.start()
    async with _client(spec) as client:
        recorder.attach(client)
        before = rss_bytes()

        async def one(index: int) -> None:
            await run_recorded(client, index, outcomes)

        async def watch() -> None:
            """Note when every job is outstanding, and what that costs."""
            most = 0
            while True:
                outstanding = client.statistics().outstanding
                most = max(most, outstanding)
                plateau["max_outstanding"] = most
                if outstanding >= jobs and "all_outstanding" not in marks:
                    marks["all_outstanding"] = time.monotonic()
                    plateau["rss_growth"] = rss_bytes() - before
                    plateau["tasks"] = len(asyncio.all_tasks())
                await asyncio.sleep(0.05)

        marks["start"] = time.monotonic()
        async with asyncio.TaskGroup() as tg:
            watcher = tg.create_task(watch())
            callers = [tg.create_task(one(index)) for index in range(jobs)]
            await asyncio.gather(*callers)
            watcher.cancel()
        marks["end"] = time.monotonic()
    figures = meter.stop()
    await lag.stop()
    submitted = marks.get("all_outstanding", marks["end"])
    # Tasks besides the callers: this one, the lag sampler, the watcher, and the client's.
    own = 3
    return {
        **figures,
        "max_outstanding": plateau.get("max_outstanding", 0),
        "submit_phase_s": submitted - marks["start"],
        "rss_growth_mb": plateau.get("rss_growth", 0) / 2**20,
        "memory_per_job_kb": plateau.get("rss_growth", 0) / jobs / 1024,
        "client_tasks_besides_callers": (
            plateau["tasks"] - jobs - own if "tasks" in plateau else None
        ),
        "lag_submitting": lag.lag_ms(marks["start"], submitted),
        "lag_polling": lag.lag_ms(submitted, marks["end"]),
        "rates_all": recorder.rates(),
        "rates_polling": recorder.rates(submitted, marks["end"]),
        "returned_at": outcomes.returned_at,
        "errors": outcomes.errors,
    }


def _heap_owner(filename: str) -> str:
    for owner in ("runninghub_async", "anyio", "aiohttp", "asyncio"):
        if f"/{owner}/" in filename:
            return owner
    return "callers and other"


async def measure_heap(spec: JSONDict) -> JSONDict:
    """The worker's second mode: live Python heap per outstanding job, by tracemalloc.

    tracemalloc slows everything down, so this runs apart from the timed run and
    stops as soon as every job is outstanding.
    """
    jobs = spec["jobs"]
    async with _client(spec) as client:
        tracemalloc.start()
        before = tracemalloc.take_snapshot()

        async def one(index: int) -> None:
            with contextlib.suppress(RunningHubError):
                await client.run(ENDPOINT, job_params(index))

        callers = [asyncio.create_task(one(index)) for index in range(jobs)]
        # The client has no "all submitted" event: look at its statistics.
        while client.statistics().outstanding < jobs:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        owners: dict[str, int] = {}
        for diff in after.compare_to(before, "filename"):
            owner = _heap_owner(diff.traceback[0].filename)
            owners[owner] = owners.get(owner, 0) + diff.size_diff
        for caller in callers:
            caller.cancel()  # cancels the waits only; leaving the client ends the jobs
        await asyncio.gather(*callers, return_exceptions=True)
    return {
        "heap_per_job_kb": current / jobs / 1024,
        "heap_peak_per_job_kb": peak / jobs / 1024,
        "heap_per_job_by_owner_kb": {k: v / jobs / 1024 for k, v in owners.items()},
    }


async def run_worker_mode(spec: JSONDict) -> JSONDict:
    """Dispatch the worker to the timed run or the heap measurement."""
    return await (measure_heap(spec) if spec.get("mode") == "heap" else run_scale(spec))


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scale test once, print its figures, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs outstanding at once")
    parser.add_argument("--median", type=float, default=8.0, help="median job duration, s")
    parser.add_argument("--sigma", type=float, default=0.2, help="log-normal sigma")
    parser.add_argument("--budget", type=float, default=1000.0, help="R: poller queries/s")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="time scale of cadence")
    parser.add_argument("--connections", type=int, default=100, help="HTTP connections")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_entry(args, run_worker_mode)

    duration = f"lognormal:{args.median:g},{args.sigma:g},{args.median * 3:g}"
    poll = policy(args.scale, args.budget)
    info = machine_info()
    print_header("scale: many outstanding jobs on one client", info)
    print(
        f"{args.jobs} jobs submitted at once; durations log-normal median {args.median:g} s, "
        f"sigma {args.sigma:g}; fake concurrency limit {args.jobs}; {args.connections} "
        f"connections; PollPolicy({', '.join(f'{k}={v:g}' for k, v in poll.items())})"
    )
    with fake_server(duration=duration, concurrency_limit=args.jobs, seed=args.seed) as fake:
        server_cpu = fake.cpu_seconds()
        spec = {
            "base_url": fake.base_url,
            "jobs": args.jobs,
            "connections": args.connections,
            "seed": args.seed,
            "poll": poll,
        }
        result = run_worker(__file__, spec)
        server_cpu = fake.cpu_seconds() - server_cpu
        stats, tasks = fake.stats(), fake.tasks()
    with fake_server(duration=duration, concurrency_limit=args.jobs, seed=args.seed) as fake:
        heap = run_worker(__file__, {**spec, "base_url": fake.base_url, "mode": "heap"})

    delays = delays_ms(result["returned_at"], tasks)
    polling, every = result["rates_polling"], result["rates_all"]
    lag_s, lag_p = result["lag_submitting"], result["lag_polling"]
    budget = args.budget
    figures: JSONDict = {
        "jobs": args.jobs,
        "completed": len(result["returned_at"]),
        "errors": result["errors"],
        "max_outstanding_client": result["max_outstanding"],
        "max_outstanding_fake": max(stats["max_running_per_key"].values(), default=0),
        "submit_phase_s": result["submit_phase_s"],
        "wall_s": result["wall_s"],
        "client_cpu_s": result["cpu_s"],
        "server_cpu_s": server_cpu,
        "rss_growth_mb": result["rss_growth_mb"],
        "memory_per_job_kb": result["memory_per_job_kb"],
        "peak_mb": result["peak_mb"],
        **heap,
        "client_tasks_besides_callers": result["client_tasks_besides_callers"],
        "lag_submitting": lag_s,
        "lag_polling": lag_p,
        "budget": budget,
        "max_queries_1s": every["max_1s"],
        "max_queries_1s_polling": polling["max_1s"],
        "mean_query_rate_polling": polling["mean_rate"],
        "queries": stats["queries"],
        "queries_per_job": stats["queries"] / args.jobs,
        **delays,
    }
    owners = heap["heap_per_job_by_owner_kb"]
    rows = [
        (
            "jobs outstanding at once (client / fake)",
            f"{figures['max_outstanding_client']} / {figures['max_outstanding_fake']}",
        ),
        ("time to submit them all", f"{figures['submit_phase_s']:.1f} s"),
        ("client memory per outstanding job, RSS", f"{figures['memory_per_job_kb']:.1f} KiB"),
        ("  (RSS growth with all outstanding)", f"{figures['rss_growth_mb']:.1f} MiB"),
        (
            "  live Python heap per job (tracemalloc)",
            f"{heap['heap_per_job_kb']:.1f} KiB (peak {heap['heap_peak_per_job_kb']:.1f})",
        ),
        *(
            (f"    allocated in {owner}", f"{owners[owner]:.2f} KiB")
            for owner in sorted(owners, key=owners.__getitem__, reverse=True)
        ),
        ("client tasks besides the callers", _fmt(figures["client_tasks_besides_callers"], "d")),
        (
            "loop lag p50 / p99 / max, polling",
            f"{lag_p['lag_p50_ms']:.1f} / {lag_p['lag_p99_ms']:.1f} / {lag_p['lag_max_ms']:.0f} ms",
        ),
        (
            "loop lag p50 / p99 / max, submitting",
            f"{lag_s['lag_p50_ms']:.1f} / {lag_s['lag_p99_ms']:.1f} / {lag_s['lag_max_ms']:.0f} ms",
        ),
        ("query budget R", f"{budget:g} /s"),
        (
            "queries in any 1 s, most (whole run)",
            f"{every['max_1s']} (x{every['max_1s'] / budget:.2f} of R)",
        ),
        (
            "queries in any 1 s, most (polling)",
            f"{polling['max_1s']} (x{polling['max_1s'] / budget:.2f} of R)",
        ),
        (
            "mean query rate while polling",
            f"{polling['mean_rate']:.0f} /s (x{polling['mean_rate'] / budget:.2f} of R)",
        ),
        ("queries per job", f"{figures['queries_per_job']:.2f}"),
        (
            "detection delay p50 / p95",
            f"{delays['delay_p50_ms'] / 1000:.2f} / {delays['delay_p95_ms'] / 1000:.2f} s",
        ),
        (
            "wall / client CPU / fake CPU",
            f"{figures['wall_s']:.1f} / {figures['client_cpu_s']:.1f} / "
            f"{figures['server_cpu_s']:.1f} s",
        ),
    ]
    print()
    print_table(
        (Column("metric", "metric"), Column("value", "value")),
        [{"metric": m, "value": v} for m, v in rows],
    )
    if figures["errors"] or figures["completed"] != args.jobs:
        print(f"  ! {figures['completed']}/{args.jobs} done, {figures['errors']}")
    at_bound = 0.9 * budget <= polling["mean_rate"] <= 1.1 * budget
    never_above = every["max_1s"] <= budget
    print(
        f"  [{'met' if at_bound else 'MISSED'}] query rate at the bound while polling "
        f"(mean within 10% of R)\n"
        f"  [{'met' if never_above else 'MISSED'}] no 1 s window above R"
    )
    write_json(
        args.json,
        {
            "benchmark": "scale",
            "machine": info,
            "settings": {
                "jobs": args.jobs,
                "duration": duration,
                "budget": budget,
                "scale": args.scale,
                "connections": args.connections,
                "seed": args.seed,
                "poll": poll,
            },
            "figures": figures,
            "targets": {"rate_at_bound": at_bound, "never_above_bound": never_above},
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
