"""The shared poller against per-job polling loops.

N jobs (default 100, then 1,000) whose durations are log-normal, time-scaled by
``--scale`` (default 1/20: a ~40 s nano-banana-pro job becomes ~2 s, a 5 s poll
interval 0.25 s), run against a fake RunningHub with a concurrency limit, once
per variant, each in its own client process against a fresh fake:

* ``library ...``: ``RunningHub.run`` per job, the shared poller with a
  PollPolicy whose times are scaled the same way (rows: its defaults scaled,
  a tuned policy, and the scaled defaults under a query budget of R/s);
* ``loop 5s`` / ``loop 2s``: RunningHub's own examples: submit, then sleep a
  fixed interval and query, per job (real 5 s and 2 s, scaled);
* ``loop backoff``: a per-job loop whose interval starts at 2 s (real) and
  grows x1.5 up to 40 s.

All variants allow the same number of jobs in flight (the fake's limit), share
one aiohttp session per client and the same connection limit.

Reported per variant: wall time, query requests in total and per job (counted
by the fake; also per job of the first window, the first ``limit`` jobs
submitted, which start before any duration can be learned, and of the later
ones), the most queries in any 1 s window (client-side stamps), p50/p95
detection delay (the fake's finish time of a job to the moment the caller's
await returns), client CPU seconds (``time.process_time`` of the client
process), peak memory (``ru_maxrss`` growth of the client process over its RSS
after imports) and the fake's CPU seconds.

Run: ``python benchmarks/poller_vs_loops.py [--jobs 100,1000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from _common import (
    API_KEY,
    DEFAULT_SCALE,
    REAL_CAP,
    REAL_MEDIAN,
    Column,
    JSONDict,
    Meter,
    Outcomes,
    QueryRecorder,
    add_common_arguments,
    auth_headers,
    delays_ms,
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
from runninghub_async._cadence import prior_for

TERMINAL = frozenset({"SUCCESS", "FAILED", "CANCEL"})
REFERENCE = "loop 5s"
TUNED_TARGET_DELAY = 2.2  # real seconds


@dataclass(frozen=True)
class Variant:
    """One way of waiting for jobs: the library with a PollPolicy, or a per-job loop."""

    name: str
    kind: str  # "library" or "loop"
    poll: dict[str, Any] | None = None
    first: float = 0.0  # loops: first sleep, growth per query, longest sleep (seconds)
    factor: float = 1.0
    maximum: float = 0.0
    note: str = ""


def scaled_default_policy(scale: float) -> dict[str, Any]:
    """PollPolicy's defaults with every time multiplied by *scale*."""
    d = PollPolicy()
    typical, _ = prior_for("rhart-image-n-pro/text-to-image")
    return {
        "target_delay": d.target_delay * scale,
        "typical_duration": typical * scale,
        "min_interval": d.min_interval * scale,
        "max_interval": d.max_interval * scale,
        "jitter": d.jitter,
        "max_concurrent": d.max_concurrent,
        "not_found_grace": d.not_found_grace * scale,
    }


def variants(scale: float, budget: float) -> list[Variant]:
    """Every row of one scenario, in print order."""
    default = scaled_default_policy(scale)
    tuned = {
        **default,
        # A user who wants a margin under the 5 s loop's p50 and p95 aims lower.
        "target_delay": TUNED_TARGET_DELAY * scale,
    }
    return [
        Variant("library default", "library", default, note="PollPolicy() defaults, times scaled"),
        Variant(
            "library tuned",
            "library",
            tuned,
            note=f"target_delay={TUNED_TARGET_DELAY:g} s (real)",
        ),
        Variant(
            f"library R={budget:g}/s",
            "library",
            {**default, "max_rate": budget},
            note="scaled defaults with PollPolicy(max_rate=R)",
        ),
        Variant(REFERENCE, "loop", first=5 * scale, maximum=5 * scale, note="fixed 5 s (real)"),
        Variant("loop 2s", "loop", first=2 * scale, maximum=2 * scale, note="fixed 2 s (real)"),
        Variant(
            "loop backoff",
            "loop",
            first=2 * scale,
            factor=1.5,
            maximum=40 * scale,
            note="2 s x1.5 up to 40 s (real)",
        ),
    ]


# -- the worker: one variant in one process ------------------------------------------------


async def _library(spec: JSONDict, outcomes: Outcomes, recorder: QueryRecorder) -> None:
    async with RunningHub(
        api_key=API_KEY,
        base_url=spec["base_url"],
        max_in_flight=spec["limit"],
        requests_per_second=None,
        poll=PollPolicy(**spec["variant"]["poll"]),
        max_connections=spec["connections"],
        seed=spec["seed"],
    ) as client:
        recorder.attach(client)

        async def one(index: int) -> None:
            await run_recorded(client, index, outcomes)

        async with asyncio.TaskGroup() as tg:
            for index in range(spec["jobs"]):
                tg.create_task(one(index))


async def _submit(session: aiohttp.ClientSession, url: str, index: int, retry: float) -> str:
    """Submit until accepted (a bare loop's minimal handling of 421/1003 rejections)."""
    for _ in range(100):
        async with session.post(url, json=job_params(index)) as response:
            body = await response.json()
        if not body.get("errorCode") and body.get("taskId"):
            return str(body["taskId"])
        await asyncio.sleep(retry)
    raise ValueError(f"submit rejected 100 times: {body}")


async def _loop(spec: JSONDict, outcomes: Outcomes, recorder: QueryRecorder) -> None:
    variant = spec["variant"]
    first, factor, maximum = variant["first"], variant["factor"], variant["maximum"]
    s_url, q_url = submit_url(spec["base_url"]), query_url(spec["base_url"])
    slots = asyncio.Semaphore(spec["limit"])
    connector = aiohttp.TCPConnector(limit=spec["connections"])
    async with aiohttp.ClientSession(connector=connector, headers=auth_headers()) as session:

        async def one(index: int) -> None:
            async with slots:
                try:
                    task_id = await _submit(session, s_url, index, first)
                    delay = first
                    while True:
                        await asyncio.sleep(delay)
                        recorder.mark()
                        async with session.post(q_url, json={"taskId": task_id}) as response:
                            body = await response.json()
                        if body.get("status") in TERMINAL:
                            break
                        delay = min(maximum, delay * factor)
                except (aiohttp.ClientError, ValueError) as exc:
                    outcomes.failed(exc)
                else:
                    outcomes.done(task_id)

        async with asyncio.TaskGroup() as tg:
            for index in range(spec["jobs"]):
                tg.create_task(one(index))


async def run_variant(spec: JSONDict) -> JSONDict:
    """Run every job of *spec* with its variant; return the client-side figures."""
    outcomes, recorder, meter = Outcomes(), QueryRecorder(), Meter()
    meter.start()
    if spec["variant"]["kind"] == "library":
        await _library(spec, outcomes, recorder)
    else:
        await _loop(spec, outcomes, recorder)
    figures = meter.stop()
    return {
        **figures,
        **recorder.rates(),
        "returned_at": outcomes.returned_at,
        "errors": outcomes.errors,
    }


# -- the orchestrator ---------------------------------------------------------------------


def measure(
    variant: Variant, *, jobs: int, limit: int, duration: str, args: argparse.Namespace
) -> JSONDict:
    """One row: a fresh fake, the variant in its own process, then the fake's view."""
    with fake_server(duration=duration, concurrency_limit=limit, seed=args.seed) as fake:
        server_cpu = fake.cpu_seconds()
        spec = {
            "base_url": fake.base_url,
            "jobs": jobs,
            "limit": limit,
            "connections": args.connections,
            "seed": args.seed,
            "variant": asdict(variant),
        }
        result = run_worker(__file__, spec)
        server_cpu = fake.cpu_seconds() - server_cpu
        stats, tasks = fake.stats(), fake.tasks()
    queries = stats["queries"]
    # The first window (the first `limit` jobs submitted) starts before any job of the
    # endpoint has finished, so the library cannot have learned its durations yet.
    by_submit = sorted(tasks, key=lambda t: t["submitted_at"])
    first, later = by_submit[:limit], by_submit[limit:]
    row: JSONDict = {
        "variant": variant.name,
        "jobs": jobs,
        "completed": len(result["returned_at"]),
        "errors": result["errors"],
        "wall_s": result["wall_s"],
        "queries": queries,
        "queries_per_job": queries / jobs,
        "queries_per_job_first_window": _mean_queries(first),
        "queries_per_job_later": _mean_queries(later),
        "max_queries_1s": result["max_1s"],
        "mean_query_rate": result["mean_rate"],
        "client_cpu_s": result["cpu_s"],
        "peak_mb": result["peak_mb"],
        "server_cpu_s": server_cpu,
        "max_running": max(stats["max_running_per_key"].values(), default=0),
        "rejections": stats["rejections"],
        **delays_ms(result["returned_at"], tasks),
    }
    return row


def _mean_queries(tasks: Sequence[JSONDict]) -> float:
    return sum(t["query_count"] for t in tasks) / len(tasks) if tasks else math.nan


COLUMNS = (
    Column("variant", "variant"),
    Column("wall s", "wall_s", "{:.1f}"),
    Column("queries", "queries"),
    Column("q/job", "queries_per_job", "{:.2f}"),
    Column("1st window", "queries_per_job_first_window", "{:.2f}"),
    Column("later", "queries_per_job_later", "{:.2f}"),
    Column("max q/1s", "max_queries_1s"),
    Column("p50 delay ms", "delay_p50_ms", "{:.0f}"),
    Column("p95 delay ms", "delay_p95_ms", "{:.0f}"),
    Column("client CPU s", "client_cpu_s", "{:.2f}"),
    Column("peak MB", "peak_mb", "{:.1f}"),
    Column("fake CPU s", "server_cpu_s", "{:.2f}"),
)


def judge(rows: Sequence[JSONDict], budget: float, outstanding: int) -> list[JSONDict]:
    """The design targets for one scenario, met or missed, with the figures."""
    verdicts: list[JSONDict] = []
    by_name = {row["variant"]: row for row in rows}
    ref = by_name.get(REFERENCE)
    for row in rows:
        if not row["variant"].startswith("library") or ref is None:
            continue
        ratio = ref["queries_per_job"] / row["queries_per_job"]
        delay_ok = row["delay_p50_ms"] <= ref["delay_p50_ms"]
        verdicts.append(
            {
                "target": "p50 delay <= loop 5s and >= 2x fewer queries/job",
                "variant": row["variant"],
                "met": bool(delay_ok and ratio >= 2),
                "detail": (
                    f"p50 {row['delay_p50_ms']:.0f} vs {ref['delay_p50_ms']:.0f} ms, "
                    f"queries/job {row['queries_per_job']:.2f} vs "
                    f"{ref['queries_per_job']:.2f} ({ratio:.2f}x fewer)"
                ),
            }
        )
    for row in rows:
        if "R=" not in row["variant"]:
            continue
        loops = ", ".join(
            f"{r['variant']} {r['max_queries_1s']}" for r in rows if r["variant"].startswith("loop")
        )
        verdicts.append(
            {
                "target": f"query rate never above R={budget:g}/s ({outstanding} outstanding)",
                "variant": row["variant"],
                "met": row["max_queries_1s"] <= budget,
                "detail": (
                    f"most queries in any 1 s: {row['max_queries_1s']} "
                    f"(x{row['max_queries_1s'] / budget:.2f} of R), mean "
                    f"{row['mean_query_rate']:.0f}/s; per-job loops: {loops}"
                ),
            }
        )
    return verdicts


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run every scenario and variant, print the tables, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=_ints, default=[100, 1000], help="N per scenario")
    parser.add_argument(
        "--limits",
        type=_ints,
        default=None,
        help="the fake's concurrency limit per scenario (default: 20 for N<=100, else N)",
    )
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="time scale")
    parser.add_argument("--sigma", type=float, default=0.35, help="log-normal sigma")
    parser.add_argument(
        "--budget", type=float, default=500.0, help="R, queries/s, for the budget row"
    )
    parser.add_argument("--connections", type=int, default=100, help="HTTP connections")
    parser.add_argument("--only", default="", help="comma-separated variant names to run")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_entry(args, run_variant)

    median, cap = REAL_MEDIAN * args.scale, REAL_CAP * args.scale
    duration = f"lognormal:{median:g},{args.sigma:g},{cap:g}"
    limits = args.limits or [20 if n <= 100 else n for n in args.jobs]
    if len(limits) == 1:
        limits = limits * len(args.jobs)
    chosen = variants(args.scale, args.budget)
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        chosen = [v for v in chosen if v.name in wanted]

    info = machine_info()
    print_header("poller_vs_loops: the shared poller against per-job polling loops", info)
    print(
        f"durations: log-normal median {median:g} s, sigma {args.sigma:g}, cap {cap:g} s "
        f"(real {REAL_MEDIAN:g} s x scale {args.scale:g}); budget R = {args.budget:g} "
        f"queries/s ({args.budget * args.scale:g}/s real); {args.connections} connections"
    )
    for v in chosen:
        if v.kind == "library":
            assert v.poll is not None
            shown = ", ".join(f"{k}={val:g}" for k, val in v.poll.items())
            print(f"  {v.name}: PollPolicy({shown})")
        else:
            print(f"  {v.name}: sleep {v.first:g} s x{v.factor:g} up to {v.maximum:g} s ({v.note})")

    scenarios: list[JSONDict] = []
    for jobs, limit in zip(args.jobs, limits, strict=True):
        rows = [measure(v, jobs=jobs, limit=limit, duration=duration, args=args) for v in chosen]
        verdicts = judge(rows, args.budget, limit)
        print(f"\nN = {jobs} jobs, concurrency limit {limit} (client and fake)")
        print_table(COLUMNS, rows)
        for row in rows:
            if row["errors"] or row["completed"] != jobs:
                print(f"  ! {row['variant']}: {row['completed']}/{jobs} done, {row['errors']}")
        for verdict in verdicts:
            mark = "met" if verdict["met"] else "MISSED"
            print(f"  [{mark}] {verdict['variant']}: {verdict['target']}: {verdict['detail']}")
        scenarios.append({"jobs": jobs, "limit": limit, "rows": rows, "targets": verdicts})

    write_json(
        args.json,
        {
            "benchmark": "poller_vs_loops",
            "machine": info,
            "settings": {
                "scale": args.scale,
                "duration": duration,
                "sigma": args.sigma,
                "budget": args.budget,
                "connections": args.connections,
                "seed": args.seed,
                "variants": [asdict(v) for v in chosen],
            },
            "scenarios": scenarios,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
