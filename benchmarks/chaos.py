"""Chaos: 1,000 jobs a round against a fake that fails in every documented way, three rounds.

Query answers: 10% HTTP 500, 5% connection resets, 2% malformed JSON; submits
beyond the account's concurrency get 421 (the client is told a larger limit than
the fake's); every /openapi/v2 call counts against a rate bucket smaller than the
client's own budget, so 1003 storms come and go.  Each round checks what a user
relies on: every job resolved, no task paid twice, no wait hung, nothing left
running after close, memory flat from round to round.

    python benchmarks/chaos.py [--jobs 1000] [--rounds 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from typing import Any

import anyio

from runninghub_async import PollPolicy, RetryPolicy, RunningHub

T2I = "rhart-image-n-pro/text-to-image"
POLL = PollPolicy(
    typical_duration=0.05, target_delay=0.02, min_interval=0.01, max_interval=0.2,
    not_found_grace=2.0,
)
RETRY = RetryPolicy(attempts=6, initial=0.01, maximum=0.2)
API_KEY = "chaos-key"
FAULTS = [
    {"kind": "http_500", "route": "query", "probability": 0.10},
    {"kind": "reset", "route": "query", "probability": 0.05},
    {"kind": "malformed_json", "route": "query", "probability": 0.02},
]


@contextlib.contextmanager
def fake_process(seed: int) -> Iterator[str]:
    """The fake in a process of its own (its memory is not the client's), faults set."""
    command = [
        sys.executable, "-m", "runninghub_async.testing", "--port", "0",
        "--api-key", API_KEY, "--duration", "0.01,0.2", "--concurrency-limit", "40",
        "--rate-limit", "100", "--seed", str(seed),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        for fault in FAULTS:
            request = urllib.request.Request(
                f"{base_url}/_fake/faults",
                data=json.dumps(fault).encode(),
                headers={"Content-Type": "application/json"},
            )
            urllib.request.urlopen(request, timeout=10).close()
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=10)


def fake_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url}/_fake/stats", timeout=10) as answer:
        stats: dict[str, Any] = json.load(answer)
    return stats


async def one_round(jobs: int, seed: int) -> dict[str, Any]:
    """One round on a fresh fake; the figures a user relies on."""
    with fake_process(seed) as base_url:
        tasks_before = len(asyncio.all_tasks())
        started = time.perf_counter()
        async with RunningHub(
            api_key=API_KEY,
            base_url=base_url,
            max_in_flight=64,  # more than the fake's 40: 421s happen and are absorbed
            requests_per_second=600.0,  # more than the fake's 100: 1003 storms happen too
            job_timeout=60.0,
            poll=POLL,
            retry=RETRY,
            seed=seed,
        ) as client:
            params = ({"prompt": f"chaos {i}", "resolution": "1k"} for i in range(jobs))
            with anyio.fail_after(120):  # a hung wait fails the round
                items = [item async for item in client.run_many(T2I, params)]
            stats = client.statistics()
        elapsed = time.perf_counter() - started
        left = len(asyncio.all_tasks()) - tasks_before
        served = await anyio.to_thread.run_sync(fake_stats, base_url)
    ok = sum(1 for i in items if i.ok)
    errors: dict[str, int] = {}
    for item in items:
        if item.error is not None:
            errors[type(item.error).__name__] = errors.get(type(item.error).__name__, 0) + 1
    ids = [i.task_id for i in items if i.task_id]
    return {
        "jobs": jobs,
        "resolved": len(items),
        "succeeded": ok,
        "errors": errors,
        "accepted_tasks": served["accepted_tasks"],
        "duplicate_task_ids": len(ids) - len(set(ids)),
        "paid_twice": served["accepted_tasks"] - len(set(ids)),
        "rejections": served["rejections"],
        "faults": served["faults_injected"],
        "absorbed": stats.limiter.rejections_absorbed,
        "tasks_left_after_close": left,
        "seconds": round(elapsed, 2),
    }


async def main_async(jobs: int, rounds: int) -> list[dict[str, Any]]:
    results = []
    tracemalloc.start()
    for n in range(rounds):
        result = await one_round(jobs, seed=n)
        gc.collect()
        result["traced_mib_after"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 2)
        results.append(result)
    tracemalloc.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    results = anyio.run(main_async, args.jobs, args.rounds)
    header = (
        f"{'round':>5} {'resolved':>9} {'ok':>6} {'paid twice':>10} {'421':>5} {'1003':>5} "
        f"{'faults':>7} {'absorbed':>8} {'tasks left':>10} {'MiB after':>9} {'s':>6}"
    )
    print(header)
    for n, r in enumerate(results):
        print(
            f"{n + 1:>5} {r['resolved']:>9} {r['succeeded']:>6} {r['paid_twice']:>10} "
            f"{r['rejections'].get('421', 0):>5} {r['rejections'].get('1003', 0):>5} "
            f"{sum(r['faults'].values()):>7} {r['absorbed']:>8} {r['tasks_left_after_close']:>10} "
            f"{r['traced_mib_after']:>9} {r['seconds']:>6}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    bad = [
        r
        for r in results
        if r["resolved"] != r["jobs"] or r["paid_twice"] or r["duplicate_task_ids"]
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
