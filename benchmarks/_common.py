"""Helpers the benchmark scripts share.

* `fake_server`: FakeRunningHub in its own process (``python -m
  runninghub_async.testing``), so the client's CPU is measured alone.
* `run_worker` / `worker_entry`: each measured run happens in a fresh
  interpreter, so CPU time and peak RSS belong to that run only.
* `scaled_default_policy`: ``PollPolicy()``'s defaults with every time scaled.
* `Meter` (client CPU seconds and peak RSS growth), `LagSampler` (event-loop
  lag), `QueryRecorder` (client-side timestamps of every status query).
* `percentile`, `max_in_window`, `print_table`, `write_json`, `machine_info`.

Everything here uses the standard library, aiohttp and runninghub_async only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import resource
import selectors
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

import runninghub_async
from runninghub_async import PollPolicy, RunningHub
from runninghub_async._cadence import prior_for

API_KEY = "bench-key"
ENDPOINT = "rhart-image-n-pro/text-to-image"
# RunningHub's real cadence and durations, in real seconds: a nano-banana-pro 2K
# job takes about 40 s (runninghub-api.md 7.3); the official examples poll every
# 5 s, others every 2 s (1.6).  Benchmarks run them time-scaled by --scale.
REAL_MEDIAN = 40.0
REAL_CAP = 200.0
DEFAULT_SCALE = 1 / 20

JSONDict = dict[str, Any]


def scaled_default_policy(scale: float) -> dict[str, Any]:
    """``PollPolicy()``'s defaults as the poller uses them for ENDPOINT, times x *scale*.

    The poller starts from ``prior_for(ENDPOINT)``'s typical duration when the
    policy has none, so the scaled policy passes that duration, scaled, as
    ``typical_duration`` (the prior's spread is a log, and does not scale).
    ``check_timeout`` bounds a network exchange, not a job: it is left as is.
    """
    d = PollPolicy()
    typical, _ = prior_for(ENDPOINT)
    scaled = {
        "target_delay": d.target_delay,
        "typical_duration": d.typical_duration or typical,
        "initial_delay": d.initial_delay,
        "min_interval": d.min_interval,
        "max_interval": d.max_interval,
        "not_found_grace": d.not_found_grace,
    }
    return {
        **{k: v * scale for k, v in scaled.items() if v is not None},
        "jitter": d.jitter,
        "max_concurrent": d.max_concurrent,
    }


def job_params(index: int) -> dict[str, str]:
    """The submit body of job *index* (valid for ENDPOINT's catalogued schema)."""
    return {"prompt": f"benchmark job {index}", "aspectRatio": "1:1", "resolution": "1k"}


def submit_url(base_url: str) -> str:
    """Where a bare client POSTs a submit."""
    return f"{base_url}/openapi/v2/{ENDPOINT}"


def query_url(base_url: str) -> str:
    """Where a bare client POSTs a status query."""
    return f"{base_url}/openapi/v2/query"


def auth_headers() -> dict[str, str]:
    """The headers a bare client sends (the library sends the same two)."""
    return {"Authorization": f"Bearer {API_KEY}", "User-Agent": "benchmark"}


# -- machine and output ------------------------------------------------------------


def machine_info() -> JSONDict:
    """Cores, Python and library versions: printed above every table."""
    return {
        "cores": os.cpu_count() or 1,
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "runninghub_async": runninghub_async.__version__,
        "platform": platform.platform(terse=True),
    }


def print_header(title: str, info: Mapping[str, Any]) -> None:
    """The first lines of a benchmark's output."""
    print(title)
    print(
        f"cores: {info['cores']}  python {info['python']}  aiohttp {info['aiohttp']}  "
        f"runninghub_async {info['runninghub_async']}  ({info['platform']})"
    )


@dataclass(frozen=True)
class Column:
    """One column of a printed table: its header, the row key and a format."""

    header: str
    key: str
    fmt: str = "{}"


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def print_table(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]]) -> None:
    """A plain aligned table: first column left-aligned, the others right-aligned."""
    cells = [[c.header for c in columns]]
    cells += [[_cell(row.get(c.key), c.fmt) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]

    def line(values: list[str]) -> str:
        parts = [values[0].ljust(widths[0])]
        parts += [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for values in cells[1:]:
        print(line(values))


def _finite(value: Any) -> Any:
    """*value* with every NaN or infinity replaced by None (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_json(path: str | None, data: Mapping[str, Any]) -> None:
    """Write *data* to *path* (when given) as indented, strict JSON."""
    if path:
        text = json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False)
        Path(path).write_text(text + "\n")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--json``, ``--seed`` and the hidden worker arguments every script takes."""
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fake and the jitter")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)


# -- statistics ---------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The *q*-th percentile (0..100) of *values*, linearly interpolated; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def max_in_window(stamps: Sequence[float], window: float = 1.0) -> int:
    """The most events in any interval of *window* seconds (sliding, exact)."""
    ordered = sorted(stamps)
    best = 0
    start = 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def delays_ms(returned_at: Mapping[str, float], tasks: Sequence[Mapping[str, Any]]) -> JSONDict:
    """Detection delay: the fake's finish time of each task to the caller's await returning.

    Both are ``time.time()`` stamps taken on this machine, in two processes.
    """
    delays = [
        (returned_at[t["id"]] - t["finished_at"]) * 1000
        for t in tasks
        if t["id"] in returned_at and t.get("finished_at") is not None
    ]
    return {
        "delay_p50_ms": percentile(delays, 50),
        "delay_p95_ms": percentile(delays, 95),
        "delay_max_ms": max(delays) if delays else math.nan,
        "delay_samples": len(delays),
    }


# -- meters --------------------------------------------------------------------------


def rss_bytes() -> int:
    """The resident set size of this process now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """The peak resident set size of this process (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@dataclass
class Meter:
    """Client CPU seconds (``time.process_time``) and wall time from `start` to `stop`.

    Peak memory is ``ru_maxrss`` at the end minus the RSS at `start`: how much the
    process grew over its size after imports.  Each run has its own process, so the
    peak belongs to that run.
    """

    wall_start: float = 0.0
    cpu_start: float = 0.0
    rss_start: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    peak_growth: int = 0

    def start(self) -> None:
        """Take the starting readings."""
        self.rss_start = rss_bytes()
        self.cpu_start = time.process_time()
        self.wall_start = time.perf_counter()

    def stop(self) -> JSONDict:
        """Take the final readings and return them."""
        self.wall = time.perf_counter() - self.wall_start
        self.cpu = time.process_time() - self.cpu_start
        self.peak_growth = max(0, peak_rss_bytes() - self.rss_start)
        return {
            "wall_s": self.wall,
            "cpu_s": self.cpu,
            "peak_mb": self.peak_growth / 2**20,
        }


class LagSampler:
    """Event-loop lag: a task sleeps *interval* in a loop and records the overshoot."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (monotonic time, lag in seconds)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.samples.append((now, max(0.0, now - before - self.interval)))

    def start(self) -> None:
        """Start sampling on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def lag_ms(self, since: float = -math.inf, until: float = math.inf) -> JSONDict:
        """p50, p99 and max lag in milliseconds of the samples taken in [since, until]."""
        lags = [lag * 1000 for at, lag in self.samples if since <= at <= until]
        return {
            "lag_p50_ms": percentile(lags, 50),
            "lag_p99_ms": percentile(lags, 99),
            "lag_max_ms": max(lags) if lags else math.nan,
            "lag_samples": len(lags),
        }


class QueryRecorder:
    """Client-side ``time.monotonic()`` stamps of every status query, at the moment it is sent.

    The library has no per-request hook, so `attach` wraps the private
    ``Transport.query`` of an open client (the poller looks the method up at
    each call).  The poller takes its ``max_rate`` token *before* calling it, so
    the stamps are the moments the budget let a query go.  Bare clients call
    `mark` themselves right before sending.
    """

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def mark(self) -> None:
        """Record one query now."""
        self.stamps.append(time.monotonic())

    def attach(self, client: RunningHub) -> None:
        """Record every query *client*'s poller sends from now on."""
        live = client._live
        transport = live.api if live is not None else None
        if transport is None or not hasattr(transport, "query"):
            raise RuntimeError("cannot instrument this runninghub_async version")
        original: Callable[..., Awaitable[Any]] = transport.query

        async def query(task_id: str, **options: Any) -> Any:
            self.mark()
            return await original(task_id, **options)

        setattr(transport, "query", query)  # noqa: B010 - an instance attribute shadows the method

    def rates(self, since: float = -math.inf, until: float = math.inf) -> JSONDict:
        """The most queries in any 1 s window, and the mean rate, within [since, until]."""
        inside = [s for s in self.stamps if since <= s <= until]
        span = (max(inside) - min(inside)) if len(inside) > 1 else 0.0
        return {
            "max_1s": max_in_window(inside, 1.0),
            # Intervals between stamps over their span: n/span overstates short runs.
            "mean_rate": (len(inside) - 1) / span if span > 0 else math.nan,
            "client_queries": len(inside),
        }


# -- the fake server in its own process -----------------------------------------------------


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process *pid* (Linux ``/proc``), else NaN."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return math.nan


@dataclass
class FakeProcess:
    """A running ``python -m runninghub_async.testing``."""

    base_url: str
    process: subprocess.Popen[str]
    api_key: str = API_KEY

    def stats(self) -> JSONDict:
        """``GET /_fake/stats``."""
        result: JSONDict = _get_json(f"{self.base_url}/_fake/stats")
        return result

    def tasks(self) -> list[JSONDict]:
        """``GET /_fake/tasks``: every task with its ``time.time()`` transitions."""
        result: list[JSONDict] = _get_json(f"{self.base_url}/_fake/tasks")
        return result

    def cpu_seconds(self) -> float:
        """CPU seconds the fake has used so far."""
        return _process_cpu_seconds(self.process.pid)


def _read_line(stream: IO[str], timeout: float) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError(f"the fake server printed no URL within {timeout} s")
    return stream.readline().strip()


@contextlib.contextmanager
def fake_server(
    *,
    duration: str,
    concurrency_limit: int | None,
    seed: int,
    startup_timeout: float = 30.0,
) -> Iterator[FakeProcess]:
    """Run FakeRunningHub on 127.0.0.1 in a child process for the ``with`` block.

    Args:
        duration: the fake's ``--duration`` (``"0"``, ``"lognormal:2,0.35,10"``, ...).
        concurrency_limit: the fake's per-key limit, or None for none.
        seed: the fake's seed (task ids, hence log-normal durations, repeat).
    """
    command = [
        sys.executable,
        "-m",
        "runninghub_async.testing",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--api-key",
        API_KEY,
        "--duration",
        duration,
        "--seed",
        str(seed),
    ]
    if concurrency_limit is not None:
        command += ["--concurrency-limit", str(concurrency_limit)]
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert process.stdout is not None
            url = _read_line(process.stdout, startup_timeout)
            if not url.startswith("http://"):
                errors.seek(0)
                raise RuntimeError(f"the fake server did not start: {url!r} {errors.read()}")
            yield FakeProcess(url, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


# -- one measured run per process ------------------------------------------------------------


def run_worker(script: str, spec: Mapping[str, Any], timeout: float = 600.0) -> JSONDict:
    """Run ``script --worker SPEC`` in a fresh interpreter and return what it wrote.

    Raises:
        RuntimeError: the worker failed (its stderr is in the message).
    """
    with tempfile.TemporaryDirectory(prefix="rh-bench-") as tmp:
        spec_path = Path(tmp, "spec.json")
        out_path = Path(tmp, "out.json")
        spec_path.write_text(json.dumps(spec))
        done = subprocess.run(
            [sys.executable, script, "--worker", str(spec_path), "--worker-out", str(out_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0 or not out_path.exists():
            raise RuntimeError(
                f"benchmark worker failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
            )
        result: JSONDict = json.loads(out_path.read_text())
        return result


def worker_entry(
    args: argparse.Namespace, run: Callable[[JSONDict], Coroutine[Any, Any, JSONDict]]
) -> int:
    """The worker side of `run_worker`: read the spec, run it, write the result."""
    spec: JSONDict = json.loads(Path(args.worker).read_text())
    result: JSONDict = asyncio.run(run(spec))
    Path(args.worker_out).write_text(json.dumps(result))
    return 0


@dataclass
class Outcomes:
    """What the callers of one run saw: when each await returned, and the errors."""

    returned_at: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def done(self, task_id: str) -> None:
        """The await for *task_id* returned now."""
        self.returned_at[task_id] = time.time()

    def failed(self, exc: BaseException) -> None:
        """An await raised *exc*."""
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


async def run_recorded(client: RunningHub, index: int, outcomes: Outcomes) -> None:
    """Run job *index* through the library and note in *outcomes* how its await ended."""
    try:
        result = await client.run(ENDPOINT, job_params(index))
    except runninghub_async.RunningHubError as exc:
        outcomes.failed(exc)
    else:
        outcomes.done(result.task_id)
