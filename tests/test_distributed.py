"""A batch over several processes through a real redis-server, and a library batch killed and
re-run on its FileJournal: each line done once, a killed worker's lines taken over without
paying twice, its slots back within the lease.

The workers are real ``runninghub-async batch --redis`` processes talking to a fake that
runs in the test's background loop (see ``test_cli.Server``).  State in Redis and in a
journal file has no event to wait on: the tests look at it, bounded, every 10 ms.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from .redis_support import RedisServer
from .test_cli import FAST, KEY, T2I, Server, pngs, write_lines
from .test_cli import serve as serve  # a fixture

WORKER = [sys.executable, "-m", "runninghub_async", "batch"]


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Look at *condition* every 10 ms until it holds; fail after *timeout* s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.01)


def start_worker(
    server: Server, redis_url: str, source: Path, out: Path, name: str, *extra: str
) -> subprocess.Popen[str]:
    command = [*WORKER, str(source), "-o", str(out), "--base-url", server.base_url, *FAST]
    command += ["--redis", redis_url, "--worker", name, "--rps", "200", *extra]
    env = {**os.environ, "RUNNINGHUB_API_KEY": KEY}
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def manifest(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def test_two_workers_share_one_batch_and_each_line_is_done_once(
    serve: Callable[..., Server], own_redis_server: RedisServer, tmp_path: Path
) -> None:
    """Two workers, one FILE: each line accepted once, its files in one DIR; manifests whole."""
    server = serve(duration=0.05, concurrency_limit=4)
    lines = [f"a fox, take {n}" for n in range(12)]
    source = write_lines(tmp_path / "prompts.txt", lines)
    outs = [tmp_path / "a", tmp_path / "b"]
    workers = [
        start_worker(server, own_redis_server.url, source, out, name, "--max-in-flight", "4")
        for out, name in zip(outs, ["a", "b"], strict=True)
    ]
    results = [finish(w) for w in workers]
    for worker, (stdout, stderr) in zip(workers, results, strict=True):
        assert worker.returncode == 0, stderr
        assert "whole batch: 12 done, 0 failed" in stdout
    stats = server.stats()
    assert stats.accepted_tasks == 12
    assert stats.submit_requests == 12  # the shared limiter kept every submit within the key
    files = pngs(outs[0]) + pngs(outs[1])
    assert len(files) == len(set(files)) == 12
    for out in outs:
        records = manifest(out)
        assert [r["index"] for r in records] == list(range(12))
        assert {r["status"] for r in records} == {"done"}
        for record in records:
            files_of = record["files"]
            assert isinstance(files_of, list)
            assert files_of
            assert all((tmp_path / str(record["worker"]) / f).exists() for f in files_of)


def _outstanding(client: redis.Redis) -> list[dict[bytes, bytes]]:
    """The journal entries of the (one) batch in this Redis that have no end yet."""
    keys = list(client.scan_iter(match="rhj:{batch:*}:outstanding"))
    if not keys:
        return []
    prefix = keys[0].decode().removesuffix("outstanding")
    members = [m.decode() for m in client.smembers(keys[0])]  # type: ignore[union-attr]
    return [client.hgetall(f"{prefix}e:{m}") for m in members]  # type: ignore[misc]


def test_a_worker_killed_mid_run_loses_nothing_and_nothing_is_paid_twice(
    serve: Callable[..., Server], own_redis_server: RedisServer, tmp_path: Path
) -> None:
    """SIGKILL one of three workers while its tasks run: the others attach to them, every line
    is accepted once, and its slots come back within the lease."""
    server = serve(duration=None, concurrency_limit=3)  # tasks end when the test says
    lines = [f"a koi pond, take {n}" for n in range(9)]
    source = write_lines(tmp_path / "prompts.txt", lines)
    names = ["w0", "w1", "w2"]
    options = ["--max-in-flight", "3", "--claim-idle", "1", "--lease", "1.5"]
    workers = {
        name: start_worker(server, own_redis_server.url, source, tmp_path / name, name, *options)
        for name in names
    }
    client = redis.Redis.from_url(own_redis_server.url)
    try:
        # Every slot taken, and every task id journaled: no submit is on the wire.
        server.wait_for(lambda fake: fake.stats.accepted_tasks == 3)
        eventually(
            lambda: (
                len(entries := _outstanding(client)) == 3 and all(b"task_id" in e for e in entries)
            )
        )
        owners = [e[b"owner"].decode() for e in _outstanding(client)]
        victim = owners[0]
        victim_tasks = sum(1 for owner in owners if owner == victim)
        pid = workers[victim].pid
        leases = client.keys("rh:*:leases")[0]
        mine = f"{socket.gethostname()}:{pid}:".encode()

        def victim_leases() -> int:
            members: list[bytes] = client.zrange(leases, 0, -1)  # type: ignore[assignment]
            return sum(1 for m in members if m.startswith(mine))

        assert victim_leases() == victim_tasks
        workers[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        workers[victim].communicate()
        server.finish_all_later()
        eventually(lambda: victim_leases() == 0)
        slots_back = time.monotonic() - killed_at
        survivors = [name for name in names if name != victim]
        results = {name: finish(workers[name]) for name in survivors}
        taken_over = time.monotonic() - killed_at
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
            process.communicate()
        client.close()
    for name in survivors:
        stdout, stderr = results[name]
        assert workers[name].returncode == 0, stderr
        assert "whole batch: 9 done, 0 failed" in stdout
    stats = server.stats()
    assert stats.accepted_tasks == 9  # the victim's tasks were attached to, not resubmitted
    assert stats.submit_requests == 9
    files = [f for name in survivors for f in pngs(tmp_path / name)]
    assert len(files) == len(set(files)) == 9
    records = manifest(tmp_path / survivors[0])
    assert [r["index"] for r in records] == list(range(9))
    assert victim not in {r["worker"] for r in records}
    assert slots_back < 1.5 + 1.0  # the lease, plus a heartbeat of a survivor
    # Seen: slots back about 1.6 s, the batch over about 2.5 s after the SIGKILL.
    assert taken_over < 10


_LIBRARY_BATCH = textwrap.dedent(
    """
    import sys, anyio
    from runninghub_async import PollPolicy, RunningHub
    from runninghub_async._journal import FileJournal

    async def main(base_url, path, count):
        poll = PollPolicy(target_delay=0.01, typical_duration=0.05, min_interval=0.01,
                          max_interval=0.05)
        params = [{"prompt": f"item {n}", "resolution": "1k"} for n in range(count)]
        async with RunningHub(
            api_key="%s", base_url=base_url, journal=FileJournal(path), poll=poll,
            max_in_flight=count
        ) as client:
            async for item in client.run_many("%s", params, key=lambda p: p["prompt"]):
                print(item.index, item.task_id, type(item.error).__name__, flush=True)

    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
    """
)


def test_a_library_batch_killed_and_rerun_on_its_journal_submits_nothing_twice(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    """run_many with a FileJournal, SIGKILLed with 2 items done and 4 running: the re-run
    skips the 2, attaches to the 4, and sends no submit."""
    server = serve(duration=None)
    script = tmp_path / "batch.py"
    script.write_text(_LIBRARY_BATCH % (KEY, T2I))
    journal = tmp_path / "journal.jsonl"
    command = [sys.executable, str(script), server.base_url, str(journal), "6"]

    def events(kind: str) -> int:
        text = journal.read_text() if journal.exists() else ""
        return sum(1 for line in text.splitlines() if json.loads(line)["event"] == kind)

    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server.wait_for(lambda fake: fake.stats.accepted_tasks == 6)
        eventually(lambda: events("accepted") == 6)
        for task_id in sorted(server.tasks())[:2]:
            server.finish(task_id)
        eventually(lambda: events("ended") == 2)
        first.send_signal(signal.SIGKILL)
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    server.finish_all_later()
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert rerun.returncode == 0, rerun.stderr
    yielded = rerun.stdout.splitlines()
    assert len(yielded) == 4  # the two that ended before the kill are skipped
    assert all(line.endswith("NoneType") for line in yielded)
    stats = server.stats()
    assert stats.submit_requests == 6
    assert stats.accepted_tasks == 6


def finish_all(workers: list[subprocess.Popen[str]]) -> list[tuple[str, str]]:
    """Every worker's output, once each has exited (none is left running, whatever happens)."""
    try:
        return [finish(worker) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
            worker.communicate()


def _both_reading(client: redis.Redis) -> bool:
    """Whether two workers have read from the (one) batch's stream."""
    streams = list(client.scan_iter(match="rhb:*:stream"))
    if not streams:
        return False
    consumers: list[object] = client.xinfo_consumers(streams[0], "workers")  # type: ignore[assignment]
    return len(consumers) == 2


def _start_two_mid_run(
    server: Server, redis_server: RedisServer, tmp_path: Path, *extra: str
) -> list[subprocess.Popen[str]]:
    """Two workers sharing 8 lines, both reading, the key's 4 slots taken by running tasks."""
    source = write_lines(tmp_path / "prompts.txt", [f"a heron, take {n}" for n in range(8)])
    options = ["--max-in-flight", "4", *extra]
    workers = [
        start_worker(server, redis_server.url, source, tmp_path / name, name, *options)
        for name in ("a", "b")
    ]
    client = redis.Redis.from_url(redis_server.url)
    try:
        server.wait_for(lambda fake: fake.stats.accepted_tasks == 4)
        eventually(lambda: _both_reading(client))
    except BaseException:
        for worker in workers:
            worker.kill()
            worker.communicate()
        raise
    finally:
        client.close()
    return workers


def test_a_redis_blip_mid_run_costs_nothing(
    serve: Callable[..., Server], own_redis_server: RedisServer, tmp_path: Path
) -> None:
    """Redis drops every connection of two workers mid-run (no data lost): both carry on, and
    the batch ends whole, each line accepted once."""
    server = serve(duration=None, concurrency_limit=4)  # tasks end when the test says
    workers = _start_two_mid_run(server, own_redis_server, tmp_path)
    admin = redis.Redis.from_url(own_redis_server.url)
    try:
        assert int(admin.client_kill_filter(_type="normal", skipme=True)) >= 2
    finally:
        admin.close()
    server.finish_all_later()
    for worker, (stdout, stderr) in zip(workers, finish_all(workers), strict=True):
        assert worker.returncode == 0, stderr
        assert "whole batch: 8 done, 0 failed" in stdout
        assert "Traceback" not in stderr
    stats = server.stats()
    assert stats.accepted_tasks == stats.submit_requests == 8


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("stop", "error: the batch's Redis has been unreachable for 2 s"),
        ("restart", "error: Redis no longer holds batch"),
    ],
)
def test_redis_gone_or_emptied_mid_run_stops_each_worker_with_one_error_line(
    serve: Callable[..., Server],
    own_redis_server: RedisServer,
    tmp_path: Path,
    fault: str,
    message: str,
) -> None:
    """Redis stops for good (past the bound: two leases, 2 s here), or restarts empty (the
    batch's state and journal are gone): each worker exits 1 with one error line, no
    traceback, no key."""
    server = serve(duration=None, concurrency_limit=4)
    extra = ["--lease", "1", "--claim-idle", "0.6"]
    workers = _start_two_mid_run(server, own_redis_server, tmp_path, *extra)
    getattr(own_redis_server, fault)()
    stopped_at = time.monotonic()
    server.finish_all_later()
    for worker, (stdout, stderr) in zip(workers, finish_all(workers), strict=True):
        assert worker.returncode == 1, stderr
        assert "Traceback" not in stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, stderr
        assert errors[0].startswith(message), stderr
        assert KEY not in stdout + stderr
    assert time.monotonic() - stopped_at < 15
