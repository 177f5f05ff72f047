"""Several processes sharing one API key: with RedisLimiter, and each on its own.

``--processes`` worker processes (3) submit ``--jobs`` jobs each (all at once,
one caller task per job awaiting ``RunningHub.run``) with one API key to a fake
whose concurrency limit is ``--limit`` (10), each configured with
``max_in_flight=--limit`` and ``requests_per_second=--rate``: the key's whole
budget.  Mode ``redis``: every process shares it through a ``RedisLimiter``
on a redis-server this script starts (or ``--redis URL``).  Mode ``local``:
each process has its own in-process limiter and believes the budget is its own.

Reported per mode: submits sent, 421s (share of submits), the most HTTP calls
in any 1 s window across all processes (client-side ``time.time()`` stamps at
the moment the rate gate let each call go) against the configured rate, the
most tasks the fake saw running at once, and the wall time.

Run: ``python benchmarks/multiprocess.py [--processes 3] [--jobs 60] [--json out.json]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
from _common import (
    API_KEY,
    Column,
    JSONDict,
    Outcomes,
    add_common_arguments,
    fake_server,
    machine_info,
    max_in_window,
    print_header,
    print_table,
    run_recorded,
    worker_entry,
    write_json,
)

from runninghub_async import PollPolicy, RunningHub
from runninghub_async.redis import RedisLimiter

# Polling scaled to jobs of about a second.
POLL = PollPolicy(
    typical_duration=0.5, target_delay=0.1, min_interval=0.1, max_interval=1.0, not_found_grace=1.0
)


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server without persistence on a free port; its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed; or pass --redis URL")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen(
        [*command, "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # poll the socket until it answers, bounded
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- instrumentation ---------------------------------------------------------------------


def stamp_requests(client: RunningHub, stamps: list[float]) -> None:
    """Record ``time.time()`` each time the client's request budget lets an HTTP call go."""
    live = client._live
    if live is None:
        raise RuntimeError("the client is not open")
    transport: Any = live.transport
    pace = transport._pace

    async def stamped() -> None:
        await pace()
        stamps.append(time.time())

    transport._pace = stamped



@contextlib.asynccontextmanager
async def open_client(spec: JSONDict) -> AsyncIterator[RunningHub]:
    """A client of the fake; in mode ``redis``, sharing the key through RedisLimiter."""
    options: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": spec["base_url"],
        "max_in_flight": spec["limit"],
        "requests_per_second": spec["rate"],
        "poll": POLL,
        "seed": spec["index"],
    }
    if spec["mode"] == "local":
        async with RunningHub(**options) as client:
            yield client
        return
    limiter = RedisLimiter.from_url(
        spec["redis"],
        api_key=API_KEY,
        max_in_flight=spec["limit"],
        requests_per_second=spec["rate"],
    )
    async with RunningHub(**options, limiter=limiter) as client:
        yield client


# -- one worker process ------------------------------------------------------------------


async def worker(spec: JSONDict) -> JSONDict:
    """Submit this process's jobs once every worker is ready; return stamps and times."""
    stamps: list[float] = []
    outcomes = Outcomes()
    async with open_client(spec) as client:
        stamp_requests(client, stamps)
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)  # the parent's "go"
        started = time.time()
        async with anyio.create_task_group() as tg:
            for job in range(spec["jobs"]):
                tg.start_soon(run_recorded, client, spec["index"] * 100_000 + job, outcomes)
        ended = time.time()
    return {
        "stamps": stamps,
        "started": started,
        "ended": ended,
        "completed": len(outcomes.returned_at),
        "errors": outcomes.errors,
    }


def run_mode(args: argparse.Namespace, mode: str, redis_url: str | None) -> JSONDict:
    """All worker processes of one mode at once, against a fresh fake."""
    duration = f"lognormal:{args.median},0.35,{args.median * 4}"
    with fake_server(duration=duration, concurrency_limit=args.limit, seed=args.seed) as fake:
        with tempfile.TemporaryDirectory(prefix="rh-multi-") as tmp:
            children = []
            for index in range(args.processes):
                spec = {
                    "mode": mode,
                    "index": index,
                    "base_url": fake.base_url,
                    "redis": redis_url,
                    "jobs": args.jobs,
                    "limit": args.limit,
                    "rate": args.rate,
                }
                spec_path, out_path = Path(tmp, f"spec{index}"), Path(tmp, f"out{index}")
                spec_path.write_text(json.dumps(spec))
                command = [sys.executable, __file__, "--worker", str(spec_path)]
                command += ["--worker-out", str(out_path)]
                child = subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                children.append((child, out_path))
            # Everyone starts together, once every worker has imported and connected.
            for child, _ in children:
                assert child.stdout is not None
                child.stdout.readline()
            for child, _ in children:
                assert child.stdin is not None
                child.stdin.write(b"go\n")
                child.stdin.flush()
            results = []
            for child, out_path in children:
                _, stderr = child.communicate(timeout=600)
                if child.returncode != 0:
                    raise RuntimeError(f"worker failed:\n{stderr.decode()[-4000:]}")
                results.append(json.loads(out_path.read_text()))
        stats = fake.stats()
    stamps = [s for r in results for s in r["stamps"]]
    submits = stats["submit_requests"]
    rejected = stats["rejections"].get("421", 0)
    errors: dict[str, int] = {}
    for r in results:
        for name, count in r["errors"].items():
            errors[name] = errors.get(name, 0) + count
    return {
        "mode": mode,
        "processes": args.processes,
        "jobs": args.processes * args.jobs,
        "completed": sum(r["completed"] for r in results),
        "submits": submits,
        "rejected_421": rejected,
        "rejected_pct": 100 * rejected / submits if submits else 0.0,
        "requests": len(stamps),
        "max_1s": max_in_window(stamps, 1.0),
        "rate": args.rate,
        "max_running": max(stats["max_running_per_key"].values(), default=0),
        "wall_s": max(r["ended"] for r in results) - min(r["started"] for r in results),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=60, help="jobs per process")
    parser.add_argument("--limit", type=int, default=10, help="the key's concurrency limit")
    parser.add_argument("--rate", type=float, default=30.0, help="the key's requests/s")
    parser.add_argument("--median", type=float, default=0.5, help="median job seconds")
    parser.add_argument("--redis", help="use this Redis instead of starting one")
    parser.add_argument("--modes", default="redis,local")
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.worker:
        return worker_entry(args, worker)
    info = machine_info()
    print_header("Several processes sharing one API key", info)
    rows = []
    with contextlib.ExitStack() as stack:
        url = args.redis or stack.enter_context(redis_server())
        for mode in args.modes.split(","):
            rows.append(run_mode(args, mode, url))
    print_table(
        [
            Column("mode", "mode"),
            Column("procs", "processes"),
            Column("jobs", "jobs"),
            Column("done", "completed"),
            Column("submits", "submits"),
            Column("421s", "rejected_421"),
            Column("421 %", "rejected_pct", "{:.1f}"),
            Column("requests", "requests"),
            Column("max req/1s", "max_1s"),
            Column("rate", "rate", "{:g}"),
            Column("max running", "max_running"),
            Column("wall s", "wall_s", "{:.1f}"),
        ],
        rows,
    )
    write_json(args.json, {"benchmark": "multiprocess", "machine": info, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
