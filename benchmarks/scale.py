"""10,000 jobs outstanding at once on one client and its one poller.

One client submits ``--jobs`` jobs at once (one caller task per job) to a fake
whose concurrency limit is raised to match and whose jobs last long enough
(log-normal, median ``--median`` s) for all of them to be outstanding together.
The poller runs under a query budget ``PollPolicy(max_rate=R)`` with the scaled
default cadence (times x ``--scale``).

Each caller submits (``RunningHub.submit``), counts its submit as answered, then
awaits its job.  Once every submit is answered the phase "submitting" ends and
"polling" begins; the run waits for exactly the jobs it submitted, whichever
ended early, so it cannot hang on a count of outstanding jobs that is never
reached.

Reported: client memory per outstanding job (RSS growth from before the first
submit to the moment the last submit is answered, divided by the jobs then
outstanding; it includes each caller's task) and, in a second run under
tracemalloc (skip it with ``--no-heap``), the live Python heap per outstanding
job and which package allocated it; event-loop lag p50/p99 (a task sleeping
10 ms records its overshoot) while submitting and while polling; the query
rate observed (client-side stamps: the most queries in any 1 s, and the mean
while polling) against R; queries per job, detection delay, client CPU, and
the tasks the client runs besides the callers (one poller loop plus its checks
in flight).  Each target of the design is printed met or missed.

Run: ``python benchmarks/scale.py [--jobs 10000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field

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
    percentile,
    print_header,
    print_table,
    rss_bytes,
    run_worker,
    scaled_default_policy,
    worker_entry,
    write_json,
)

from runninghub_async import PollPolicy, RunningHub, RunningHubError

TARGET_LAG_P99_MS = 5.0  # while submitting
TARGET_KIB_PER_JOB = 12.0


class GcPauses:
    """CPython's garbage collections in this process: when each ended, its generation, length."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, int, float]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._started = now
        else:
            self.pauses.append((now, info["generation"], now - self._started))

    def start(self) -> None:
        """Record every collection from now on."""
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        """Stop recording."""
        gc.callbacks.remove(self._callback)

    def summary(self, since: float, until: float) -> JSONDict:
        """Full collections in [since, until]: how many, the longest, all collections' total."""
        inside = [p for p in self.pauses if since <= p[0] <= until]
        full = [seconds for _, generation, seconds in inside if generation == 2]
        return {
            "full_collections": len(full),
            "longest_full_ms": max(full, default=0.0) * 1000,
            "gc_total_ms": sum(p[2] for p in inside) * 1000,
        }

    def lag_outside(self, lag: LagSampler, since: float, until: float) -> float:
        """Lag p99 (ms) in [since, until] over the samples no collection of 1 ms+ stalled."""
        ends = [end for end, _, seconds in self.pauses if seconds >= 0.001]
        kept = [
            value * 1000
            for at, value in lag.samples
            if since <= at <= until and not any(at - value - 0.001 <= e <= at for e in ends)
        ]
        return percentile(kept, 99)


def policy(scale: float, budget: float) -> JSONDict:
    """PollPolicy's defaults with times scaled, under a budget of *budget* queries/s."""
    return {**scaled_default_policy(scale), "max_rate": budget}


def _client(spec: JSONDict) -> RunningHub:
    """The client both modes measure: every job may be outstanding at once."""
    return RunningHub(
        api_key=API_KEY,
        base_url=spec["base_url"],
        max_in_flight=spec["jobs"],
        requests_per_second=None,
        # Bounds the run should the fake lose a job: no wait outlives this.
        job_timeout=spec["job_timeout"],
        poll=PollPolicy(**spec["poll"]),
        max_connections=spec["connections"],
        seed=spec["seed"],
    )


@dataclass
class Callers:
    """One task per job: submit, count the answer, await the job."""

    client: RunningHub
    jobs: int
    outcomes: Outcomes = field(default_factory=Outcomes)
    answered: int = 0
    submitted: asyncio.Event = field(default_factory=asyncio.Event)

    async def one(self, index: int) -> None:
        """Submit job *index* and wait for it; failures are counted, not raised."""
        try:
            try:
                job = await self.client.submit(ENDPOINT, job_params(index))
            finally:
                self.answered += 1
                if self.answered == self.jobs:
                    self.submitted.set()
            result = await job.wait()
        except RunningHubError as exc:
            self.outcomes.failed(exc)
        else:
            self.outcomes.done(result.task_id)


async def run_scale(spec: JSONDict) -> JSONDict:
    """The worker: submit every job at once, watch memory, lag and queries until all end."""
    jobs = spec["jobs"]
    recorder, meter, lag, pauses = QueryRecorder(), Meter(), LagSampler(0.01), GcPauses()
    marks: dict[str, float] = {}
    lag.start()
    pauses.start()
    meter.start()
    async with _client(spec) as client:
        recorder.attach(client)
        callers = Callers(client, jobs)
        before = rss_bytes()
        marks["start"] = time.monotonic()
        async with asyncio.TaskGroup() as tg:
            for index in range(jobs):
                tg.create_task(callers.one(index))
            await callers.submitted.wait()
            marks["submitted"] = time.monotonic()
            rss_growth = rss_bytes() - before
            outstanding = client.statistics().outstanding
            tasks = len(asyncio.all_tasks())
        marks["end"] = time.monotonic()
    figures = meter.stop()
    await lag.stop()
    pauses.stop()
    submitted = marks["submitted"]
    # Tasks besides the callers (about one per outstanding job): this one, the lag
    # sampler, and the client's.
    own = 2
    return {
        **figures,
        "outstanding": outstanding,
        "submit_phase_s": submitted - marks["start"],
        "rss_growth_mb": rss_growth / 2**20,
        "memory_per_job_kb": rss_growth / max(outstanding, 1) / 1024,
        "client_tasks_besides_callers": tasks - outstanding - own,
        "lag_submitting": lag.lag_ms(marks["start"], submitted),
        "gc_submitting": pauses.summary(marks["start"], submitted),
        "lag_p99_outside_gc_ms": pauses.lag_outside(lag, marks["start"], submitted),
        "lag_polling": lag.lag_ms(submitted, marks["end"]),
        "rates_all": recorder.rates(),
        "rates_polling": recorder.rates(submitted, marks["end"]),
        "returned_at": callers.outcomes.returned_at,
        "errors": callers.outcomes.errors,
    }


def _heap_owner(filename: str) -> str:
    for owner in ("runninghub_async", "anyio", "aiohttp", "asyncio"):
        if f"/{owner}/" in filename:
            return owner
    return "callers and other"


async def measure_heap(spec: JSONDict) -> JSONDict:
    """The worker's second mode: live Python heap per outstanding job, by tracemalloc.

    tracemalloc slows everything down, so this runs apart from the timed run and
    stops as soon as every submit is answered.
    """
    jobs = spec["jobs"]
    async with _client(spec) as client:
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        callers = Callers(client, jobs)
        tasks = [asyncio.create_task(callers.one(index)) for index in range(jobs)]
        try:
            await callers.submitted.wait()
            outstanding = max(client.statistics().outstanding, 1)
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
            for task in tasks:
                task.cancel()  # cancels the waits only; leaving the client ends the jobs
            await asyncio.gather(*tasks, return_exceptions=True)
        owners: dict[str, int] = {}
        for diff in after.compare_to(before, "filename"):
            owner = _heap_owner(diff.traceback[0].filename)
            owners[owner] = owners.get(owner, 0) + diff.size_diff
    return {
        "heap_outstanding": outstanding,
        "heap_per_job_kb": current / outstanding / 1024,
        "heap_peak_per_job_kb": peak / outstanding / 1024,
        "heap_per_job_by_owner_kb": {k: v / outstanding / 1024 for k, v in owners.items()},
    }


async def run_worker_mode(spec: JSONDict) -> JSONDict:
    """Dispatch the worker to the timed run or the heap measurement."""
    return await (measure_heap(spec) if spec.get("mode") == "heap" else run_scale(spec))


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _lag(lag: JSONDict) -> str:
    return f"{lag['lag_p50_ms']:.1f} / {lag['lag_p99_ms']:.1f} / {lag['lag_max_ms']:.0f} ms"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scale test once, print its figures, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs outstanding at once")
    parser.add_argument("--median", type=float, default=8.0, help="median job duration, s")
    parser.add_argument("--sigma", type=float, default=0.2, help="log-normal sigma")
    parser.add_argument("--budget", type=float, default=1000.0, help="R: poller queries/s")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="time scale of cadence")
    parser.add_argument("--connections", type=int, default=100, help="HTTP connections")
    parser.add_argument(
        "--heap",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the live heap per job in a second run under tracemalloc",
    )
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_entry(args, run_worker_mode)

    cap = args.median * 3
    duration = f"lognormal:{args.median:g},{args.sigma:g},{cap:g}"
    poll = policy(args.scale, args.budget)
    info = machine_info()
    print_header("scale: many outstanding jobs on one client", info)
    print(
        f"{args.jobs} jobs submitted at once; durations log-normal median {args.median:g} s, "
        f"sigma {args.sigma:g}; fake concurrency limit {args.jobs}; {args.connections} "
        f"connections; PollPolicy({', '.join(f'{k}={v:g}' for k, v in poll.items())})"
    )
    spec = {
        "jobs": args.jobs,
        "connections": args.connections,
        "seed": args.seed,
        "poll": poll,
        # Every job ends by the cap; the queries to see it end take a while more.
        "job_timeout": 4 * cap + 60,
    }
    with fake_server(duration=duration, concurrency_limit=args.jobs, seed=args.seed) as fake:
        server_cpu = fake.cpu_seconds()
        result = run_worker(__file__, {**spec, "base_url": fake.base_url})
        server_cpu = fake.cpu_seconds() - server_cpu
        stats, tasks = fake.stats(), fake.tasks()
    heap: JSONDict = {}
    if args.heap:
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
        "outstanding_client": result["outstanding"],
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
        "gc_submitting": result["gc_submitting"],
        "lag_p99_outside_gc_ms": result["lag_p99_outside_gc_ms"],
        "budget": budget,
        "max_queries_1s": every["max_1s"],
        "max_queries_1s_polling": polling["max_1s"],
        "mean_query_rate_polling": polling["mean_rate"],
        "queries": stats["queries"],
        "queries_per_job": stats["queries"] / args.jobs,
        **delays,
    }
    rows = [
        (
            "jobs outstanding when all submitted (client / fake max)",
            f"{figures['outstanding_client']} / {figures['max_outstanding_fake']}",
        ),
        ("time to submit them all", f"{figures['submit_phase_s']:.1f} s"),
        ("client memory per outstanding job, RSS", f"{figures['memory_per_job_kb']:.1f} KiB"),
        ("  (RSS growth with all outstanding)", f"{figures['rss_growth_mb']:.1f} MiB"),
    ]
    if heap:
        owners = heap["heap_per_job_by_owner_kb"]
        rows += [
            (
                "  live Python heap per job (tracemalloc)",
                f"{heap['heap_per_job_kb']:.1f} KiB (peak {heap['heap_peak_per_job_kb']:.1f})",
            ),
            *(
                (f"    allocated in {owner}", f"{owners[owner]:.2f} KiB")
                for owner in sorted(owners, key=owners.__getitem__, reverse=True)
            ),
        ]
    rows += [
        ("client tasks besides the callers", _fmt(figures["client_tasks_besides_callers"], "d")),
        ("loop lag p50 / p99 / max, submitting", _lag(lag_s)),
        (
            "  full GC collections while submitting (longest)",
            f"{result['gc_submitting']['full_collections']} "
            f"({result['gc_submitting']['longest_full_ms']:.0f} ms)",
        ),
        (
            "  loop lag p99 outside GC pauses, submitting",
            f"{result['lag_p99_outside_gc_ms']:.1f} ms",
        ),
        ("loop lag p50 / p99 / max, polling", _lag(lag_p)),
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
    targets = {
        "lag_submitting": lag_s["lag_p99_ms"] < TARGET_LAG_P99_MS,
        "memory_per_job": figures["memory_per_job_kb"] < TARGET_KIB_PER_JOB,
        "rate_at_bound": 0.9 * budget <= polling["mean_rate"] <= 1.1 * budget,
        "never_above_bound": every["max_1s"] <= budget,
    }
    said = {
        "lag_submitting": f"loop lag p99 under {TARGET_LAG_P99_MS:g} ms while submitting",
        "memory_per_job": f"RSS per outstanding job under {TARGET_KIB_PER_JOB:g} KiB",
        "rate_at_bound": "query rate at the bound while polling (mean within 10% of R)",
        "never_above_bound": "no 1 s window above R",
    }
    for key, met in targets.items():
        print(f"  [{'met' if met else 'MISSED'}] {said[key]}")
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
                "heap": args.heap,
            },
            "figures": figures,
            "targets": targets,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
