"""The shared poller against per-job polling loops, webhooks and the computed limit.

N jobs (default 100, then 1,000) whose durations are log-normal, time-scaled by
``--scale`` (default 1/20: a ~40 s nano-banana-pro job becomes ~2 s, a 5 s poll
interval 0.25 s), run against a fake RunningHub with a concurrency limit, once
per variant, each in its own client process against a fresh fake:

* ``library default``: ``RunningHub.run`` per job, the shared poller with
  ``PollPolicy()``'s defaults, every time scaled the same way;
* ``library td=X s`` (``--target-delays``): the same with another ``target_delay``;
* ``library R=...``: the scaled defaults under a query budget ``max_rate=R``;
* ``library webhook``: the scaled defaults with ``webhook_url`` pointing at a
  receiver (``runninghub_async.webhooks.aiohttp_handler``) in the client's own
  process; the fake POSTs each task's TASK_END callback there, and the client
  confirms it with one query;
* ``loop 5s`` / ``loop 2s``: RunningHub's own examples: submit, then sleep a
  fixed interval and query, per job (real 5 s and 2 s, scaled);
* ``loop backoff``: a per-job loop whose interval starts at 2 s (real) and
  grows x1.5 up to 40 s;
* ``limit (DP, computed)``: not run.  The fewest queries per job any fixed
  schedule of checks could spend with a p50 and a p95 delay no worse than the
  5 s loop's, computed exactly by dynamic programming from the *true* duration
  distribution (``cadence_sim.limit_row``), with zero latency.  No poller,
  learning or not, can beat it.

All variants allow the same number of jobs in flight (the fake's limit), share
one aiohttp session per client and the same connection limit.

Reported per variant: query requests per job (counted by the fake) and how many
times fewer than the 5 s loop's; p50/p95 detection delay (the fake's finish time
of a job to the moment the caller's await returns); queries per job of the first
window (the first ``limit`` jobs submitted, which start before any duration can
be learned) and of the later ones; the most queries in any 1 s window
(client-side stamps); wall time, client CPU seconds (``time.process_time`` of the
client process) and peak memory (``ru_maxrss`` growth over its RSS after
imports).  The JSON also has the totals and the fake's CPU seconds.

Run: ``python benchmarks/poller_vs_loops.py [--jobs 100,1000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import socket
import sys
from collections.abc import AsyncIterator, Sequence
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
    scaled_default_policy,
    submit_url,
    worker_entry,
    write_json,
)
from aiohttp import web
from cadence_sim import Durations, limit_row

from runninghub_async import PollPolicy, RunningHub
from runninghub_async._cadence import LATE_FRACTION
from runninghub_async.webhooks import aiohttp_handler

TERMINAL = frozenset({"SUCCESS", "FAILED", "CANCEL"})
REFERENCE = "loop 5s"
DEFAULT = "library default"
WEBHOOK = "library webhook"
LIMIT = "limit (DP, computed)"
# The design targets (issue 14): against the 5 s loop at no worse p50 and p95 delay.
TARGET_RATIO = 1.7
WEBHOOK_QUERIES = 1.1


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


def variants(scale: float, budget: float, target_delays: Sequence[float]) -> list[Variant]:
    """Every measured row of one scenario, in print order."""
    default = scaled_default_policy(scale)
    return [
        Variant(DEFAULT, "library", default, note="PollPolicy() defaults, times scaled"),
        *(
            Variant(
                f"library td={td:g}s",
                "library",
                {**default, "target_delay": td * scale},
                note=f"scaled defaults with target_delay={td:g} s (real)",
            )
            for td in target_delays
        ),
        Variant(WEBHOOK, "webhook", default, note="scaled defaults, TASK_END callbacks"),
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


@contextlib.asynccontextmanager
async def _receiver(client: RunningHub, sock: socket.socket) -> AsyncIterator[None]:
    """Serve *client*'s webhook receiver at ``/hook`` on the bound socket *sock*."""
    app = web.Application()
    app.router.add_post("/hook", aiohttp_handler(client))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield
    finally:
        await runner.cleanup()


async def _library(spec: JSONDict, outcomes: Outcomes, recorder: QueryRecorder) -> None:
    with socket.socket() as sock:
        url = None
        if spec["variant"]["kind"] == "webhook":
            # Bound first: the client needs the URL, and the receiver the client.
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        client = RunningHub(
            api_key=API_KEY,
            base_url=spec["base_url"],
            max_in_flight=spec["limit"],
            requests_per_second=None,
            poll=PollPolicy(**spec["variant"]["poll"]),
            max_connections=spec["connections"],
            seed=spec["seed"],
            webhook_url=url,
        )
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(client)
            if url is not None:
                await stack.enter_async_context(_receiver(client, sock))
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
    if spec["variant"]["kind"] in ("library", "webhook"):
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
        "webhooks": stats.get("webhook_deliveries", 0),
        **delays_ms(result["returned_at"], tasks),
    }
    return row


def _mean_queries(tasks: Sequence[JSONDict]) -> float:
    return sum(t["query_count"] for t in tasks) / len(tasks) if tasks else math.nan


def computed_limit(scale: float, sigma: float, grid: int) -> JSONDict:
    """The limit row: the optimal fixed schedule for the true durations, against loop 5s."""
    dist = Durations(REAL_MEDIAN * scale, sigma, REAL_CAP * scale)
    best = limit_row(5 * scale, dist, grid)
    return {
        "variant": LIMIT,
        "queries_per_job": best.queries,
        "fewer_than_loop": best.loop_queries / best.queries,
        "delay_p50_ms": best.p50 * 1000,
        "delay_p95_ms": best.p95 * 1000,
        "loop_queries_per_job": best.loop_queries,
        "loop_p50_ms": best.loop_p50 * 1000,
        "loop_p95_ms": best.loop_p95 * 1000,
        "checks_s": best.checks,
        "grid": grid,
    }


COLUMNS = (
    Column("variant", "variant"),
    Column("q/job", "queries_per_job", "{:.2f}"),
    Column("x fewer", "fewer_than_loop", "{:.2f}"),
    Column("p50 ms", "delay_p50_ms", "{:.0f}"),
    Column("p95 ms", "delay_p95_ms", "{:.0f}"),
    Column("1st window", "queries_per_job_first_window", "{:.2f}"),
    Column("later", "queries_per_job_later", "{:.2f}"),
    Column("max q/1s", "max_queries_1s"),
    Column("wall s", "wall_s", "{:.1f}"),
    Column("CPU s", "client_cpu_s", "{:.2f}"),
    Column("peak MB", "peak_mb", "{:.1f}"),
)


def add_ratios(rows: Sequence[JSONDict]) -> None:
    """Each measured row's queries per job, as times fewer than the 5 s loop's."""
    ref = next((row for row in rows if row["variant"] == REFERENCE), None)
    for row in rows:
        if ref is not None and row["variant"] != LIMIT:
            row["fewer_than_loop"] = ref["queries_per_job"] / row["queries_per_job"]


def judge(
    rows: Sequence[JSONDict], *, budget: float, outstanding: int, interval_ms: float
) -> list[JSONDict]:
    """The design targets for one scenario, met or missed, with the figures."""
    verdicts: list[JSONDict] = []
    by_name = {row["variant"]: row for row in rows}
    ref, best = by_name.get(REFERENCE), by_name.get(LIMIT)
    for row in rows:
        name = row["variant"]
        if ref is None or not name.startswith("library") or name == WEBHOOK or "R=" in name:
            continue
        ratio = row["fewer_than_loop"]
        p50_ok = row["delay_p50_ms"] <= ref["delay_p50_ms"]
        p95_ok = row["delay_p95_ms"] <= ref["delay_p95_ms"]
        of_limit = f", {ratio / best['fewer_than_loop']:.0%} of the limit's" if best else ""
        verdicts.append(
            {
                "target": f">= {TARGET_RATIO:g}x fewer queries/job than loop 5s, p50 and p95 "
                "no worse",
                "variant": name,
                "met": bool(p50_ok and p95_ok and ratio >= TARGET_RATIO),
                "detail": (
                    f"{ratio:.2f}x fewer{of_limit}; p50 {row['delay_p50_ms']:.0f} vs "
                    f"{ref['delay_p50_ms']:.0f} ms, p95 {row['delay_p95_ms']:.0f} vs "
                    f"{ref['delay_p95_ms']:.0f} ms"
                ),
            }
        )
    hook = by_name.get(WEBHOOK)
    if hook is not None:
        verdicts.append(
            {
                "target": f"<= {WEBHOOK_QUERIES:g} queries/job, p50 under one poll interval "
                f"({interval_ms:.0f} ms)",
                "variant": WEBHOOK,
                "met": bool(
                    hook["queries_per_job"] <= WEBHOOK_QUERIES
                    and hook["delay_p50_ms"] < interval_ms
                ),
                "detail": (
                    f"{hook['queries_per_job']:.2f} queries/job, p50 {hook['delay_p50_ms']:.0f} "
                    f"ms, p95 {hook['delay_p95_ms']:.0f} ms; {hook.get('webhooks', 0)} "
                    "callbacks delivered"
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


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


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
    parser.add_argument(
        "--target-delays",
        type=_floats,
        default=[],
        help="extra library rows with these target_delay values (real seconds, comma-separated)",
    )
    parser.add_argument(
        "--limit-grid",
        type=int,
        default=20,
        help="check times per 5 s loop interval in the limit's DP (0: no limit row)",
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
    chosen = variants(args.scale, args.budget, args.target_delays)
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        chosen = [v for v in chosen if v.name in wanted]
    default = scaled_default_policy(args.scale)
    # One check interval of the default cadence while a job runs (_cadence.next_check).
    interval_ms = 2 * (1 - LATE_FRACTION) * default["target_delay"] * 1000

    info = machine_info()
    print_header("poller_vs_loops: the shared poller against per-job polling loops", info)
    print(
        f"durations: log-normal median {median:g} s, sigma {args.sigma:g}, cap {cap:g} s "
        f"(real {REAL_MEDIAN:g} s x scale {args.scale:g}); budget R = {args.budget:g} "
        f"queries/s ({args.budget * args.scale:g}/s real); {args.connections} connections"
    )
    for v in chosen:
        if v.poll is not None:
            shown = ", ".join(f"{k}={val:g}" for k, val in v.poll.items())
            extra = " + webhook_url" if v.kind == "webhook" else ""
            print(f"  {v.name}: PollPolicy({shown}){extra}")
        else:
            print(f"  {v.name}: sleep {v.first:g} s x{v.factor:g} up to {v.maximum:g} s ({v.note})")
    best = computed_limit(args.scale, args.sigma, args.limit_grid) if args.limit_grid else None
    if best is not None:
        print(
            f"  {LIMIT}: fewest queries/job of any fixed schedule with p50 <= "
            f"{best['loop_p50_ms']:.0f} ms and p95 <= {best['loop_p95_ms']:.0f} ms (the 5 s "
            f"loop's, exactly: {best['loop_queries_per_job']:.2f} q/job); zero latency; first "
            "checks at " + ", ".join(f"{t:.2f}" for t in best["checks_s"][:4]) + " s ..."
        )

    scenarios: list[JSONDict] = []
    for jobs, limit in zip(args.jobs, limits, strict=True):
        rows = [measure(v, jobs=jobs, limit=limit, duration=duration, args=args) for v in chosen]
        add_ratios(rows)
        if best is not None:
            rows.append(dict(best))
        verdicts = judge(rows, budget=args.budget, outstanding=limit, interval_ms=interval_ms)
        print(f"\nN = {jobs} jobs, concurrency limit {limit} (client and fake)")
        print_table(COLUMNS, rows)
        for row in rows:
            if row["variant"] != LIMIT and (row["errors"] or row["completed"] != jobs):
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
                "limit_grid": args.limit_grid,
                "variants": [asdict(v) for v in chosen],
            },
            "scenarios": scenarios,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
