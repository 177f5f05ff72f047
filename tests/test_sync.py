"""The blocking client: the async one on a loop of its own thread, from plain threads,
from inside a running event loop, with the same errors, Ctrl-C, and no thread left behind.

The fake runs in another background thread with its own loop, as RunningHub runs
elsewhere; these tests are plain sync functions.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest

import runninghub_async
from runninghub_async import (
    BatchItem,
    ClientClosedError,
    InvalidParametersError,
    JobResult,
    TaskFailedError,
    TaskSnapshot,
    TaskStatus,
)
from runninghub_async import sync as rh_sync
from runninghub_async.testing import FakeRunningHub, FakeStats, FakeTask
from runninghub_async.testing._png import render_png

from .conftest import FAST_POLL, FAST_RETRY

T2I = "rhart-image-n-pro/text-to-image"
GOOD: dict[str, Any] = {"prompt": "a red fox", "resolution": "1k"}


class FakeThread:
    """A `FakeRunningHub` serving from a background thread, driven from the test's thread."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, fake: FakeRunningHub) -> None:
        self._portal = portal
        self._fake = fake
        self.base_url = fake.base_url
        self.api_key = fake.api_key

    def stats(self) -> FakeStats:
        return self._portal.call(lambda: self._fake.stats)

    def task(self, task_id: str) -> FakeTask:
        return self._portal.call(lambda: self._fake.tasks[task_id])

    def finish(self, task_id: str) -> None:
        self._portal.call(self._fake.finish, task_id)

    def fail(self, task_id: str, code: str) -> None:
        self._portal.call(self._fake.fail, task_id, code)

    def wait_for(self, predicate: Callable[[FakeRunningHub], bool]) -> None:
        self._portal.call(lambda: self._fake.wait_for(predicate, timeout=10))

    def client(self, **overrides: Any) -> rh_sync.RunningHub:
        """A blocking client bound to this fake, polling fast."""
        options: dict[str, Any] = {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "max_in_flight": 8,
            "requests_per_second": None,
            "poll": FAST_POLL,
            "retry": FAST_RETRY,
            "seed": 7,
        }
        options.update(overrides)
        return rh_sync.RunningHub(**options)


@contextmanager
def fake_thread(**options: Any) -> Iterator[FakeThread]:
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        with portal.wrap_async_context_manager(FakeRunningHub(**options)) as fake:
            yield FakeThread(portal, fake)


@pytest.fixture
def fake() -> Iterator[FakeThread]:
    """Tasks end on their own within 10-50 ms."""
    with fake_thread(duration=(0.01, 0.05), seed=1) as server:
        yield server


@pytest.fixture
def manual() -> Iterator[FakeThread]:
    """Tasks run until the test ends them."""
    with fake_thread(duration=None, seed=2) as server:
        yield server


def client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "runninghub-sync"]


def test_run_returns_the_result(fake: FakeThread) -> None:
    """``run`` blocks until the job ends and returns the async client's JobResult."""
    with fake.client() as client:
        result = client.run(T2I, GOOD)
    assert isinstance(result, JobResult)
    assert result.status is TaskStatus.SUCCESS
    assert result.outputs[0].url
    assert fake.task(result.task_id).status == "SUCCESS"


def test_submit_then_wait(fake: FakeThread) -> None:
    """``submit`` returns a blocking Job whose ``wait`` gets the result."""
    with fake.client() as client:
        job = client.submit(T2I, GOOD)
        assert isinstance(job, rh_sync.Job)
        assert job.task_id.isdigit()
        assert job.endpoint == T2I
        assert job.params == GOOD
        result = job.wait()
        assert job.done()
        assert result.task_id == job.task_id
        again = client.attach(job.task_id)
        assert again.task_id == job.task_id
        assert again.wait().outputs == result.outputs
        snapshot = client.query(job.task_id)
        assert isinstance(snapshot, TaskSnapshot)
        assert snapshot.status is TaskStatus.SUCCESS


def check_batch(items: list[BatchItem], size: int) -> None:
    assert sorted(item.index for item in items) == list(range(size))
    assert all(item.ok and item.result is not None for item in items), items
    assert len({item.task_id for item in items}) == size


def test_run_many_from_a_plain_thread(fake: FakeThread) -> None:
    """A batch of 20 from a worker thread: every item comes back, each once."""
    items: list[BatchItem] = []
    errors: list[BaseException] = []

    def worker(client: rh_sync.RunningHub) -> None:
        try:
            items.extend(client.run_many(T2I, [dict(GOOD, prompt=f"fox {i}") for i in range(20)]))
        except BaseException as exc:
            errors.append(exc)

    with fake.client() as client:
        thread = threading.Thread(target=worker, args=(client,))
        thread.start()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    check_batch(items, 20)
    assert fake.stats().accepted_tasks == 20


def test_works_inside_a_running_event_loop(fake: FakeThread) -> None:
    """Like a notebook cell: called from a thread whose loop runs, it blocks but works."""

    async def cell() -> tuple[JobResult, list[BatchItem]]:
        asyncio.get_running_loop()  # this thread runs a loop: asyncio.run() would refuse
        with fake.client() as client:
            result = client.run(T2I, GOOD)
            return result, list(client.run_many(T2I, [GOOD] * 20))

    result, items = asyncio.run(cell())
    assert result.status is TaskStatus.SUCCESS
    check_batch(items, 20)


def test_a_failed_task_raises_the_async_clients_error(manual: FakeThread) -> None:
    """The exception is the async client's own class, not wrapped."""
    with manual.client() as client:
        job = client.submit(T2I, GOOD)
        manual.fail(job.task_id, "1501")
        with pytest.raises(TaskFailedError) as info:
            job.wait()
    assert type(info.value) is TaskFailedError
    assert info.value.task_id == job.task_id
    assert info.value.code == "1501"


def test_invalid_params_raise_before_anything_is_sent(fake: FakeThread) -> None:
    """Validation errors come out as InvalidParametersError naming the field."""
    with fake.client() as client, pytest.raises(InvalidParametersError) as info:
        client.run(T2I, {"prompt": "x", "resolution": "9k"})
    assert info.value.field == "resolution"
    assert fake.stats().submit_requests == 0


def test_several_threads_share_one_client(fake: FakeThread) -> None:
    """Calls from eight threads at once all complete on the client's one loop."""
    results: list[JobResult] = []
    errors: list[BaseException] = []

    def worker(client: rh_sync.RunningHub, n: int) -> None:
        try:
            for i in range(3):
                results.append(client.run(T2I, dict(GOOD, prompt=f"fox {n}.{i}")))
        except BaseException as exc:
            errors.append(exc)

    with fake.client(max_in_flight=4) as client:
        threads = [threading.Thread(target=worker, args=(client, n)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        stats = client.statistics()
    assert errors == []
    assert len({r.task_id for r in results}) == 24
    assert stats.submits_accepted == 24
    assert stats.limiter.in_flight == 0


def test_close_then_a_call_raises_client_closed(manual: FakeThread) -> None:
    """After close() every call, and every wait, raises ClientClosedError; re-opening is refused."""
    client = manual.client()
    job = client.submit(T2I, GOOD)  # the first call starts the client
    client.close()
    client.close()  # closing twice is fine
    with pytest.raises(ClientClosedError):
        client.run(T2I, GOOD)
    with pytest.raises(ClientClosedError):
        job.wait()
    with pytest.raises(ClientClosedError):
        list(client.run_many(T2I, [GOOD]))
    with pytest.raises(RuntimeError, match="only once"):
        client.__enter__()
    assert client.statistics().submits_accepted == 1


def test_a_wait_running_when_the_client_closes_gets_client_closed(manual: FakeThread) -> None:
    """A thread blocked in wait() is released with ClientClosedError by close()."""
    outcome: list[BaseException] = []
    with manual.client() as client:
        job = client.submit(T2I, GOOD)

        def waiter() -> None:
            try:
                job.wait()
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=waiter)
        thread.start()
        manual.wait_for(lambda f: f.tasks[job.task_id].query_count >= 1)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ClientClosedError), outcome


def test_no_thread_before_start_and_none_left_after_close(fake: FakeThread) -> None:
    """Constructing starts nothing; the first call starts one thread; close() ends it."""
    before = set(threading.enumerate())
    client = fake.client()
    assert set(threading.enumerate()) == before
    client.run(T2I, GOOD)
    assert len(client_threads()) == 1
    client.close()
    assert set(threading.enumerate()) == before
    with fake.client() as other:
        other.run(T2I, GOOD)
    assert set(threading.enumerate()) == before


def test_wait_timeout_ends_only_that_wait(manual: FakeThread) -> None:
    """``wait(timeout)`` raises the built-in TimeoutError; the job goes on."""
    with manual.client() as client:
        job = client.submit(T2I, GOOD)
        with pytest.raises(TimeoutError) as info:
            job.wait(timeout=0.05)
        assert not isinstance(info.value, runninghub_async.JobTimeoutError)
        manual.finish(job.task_id)
        assert job.wait(timeout=10).status is TaskStatus.SUCCESS


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (float("nan"), ValueError),  # was anyio's "deadline must not be NaN"
        (-1, ValueError),
        ("2", TypeError),  # was "unsupported operand type(s) for +: 'float' and 'str'"
        (True, TypeError),
        (b"2", TypeError),
    ],
)
def test_a_bad_wait_timeout_is_named(
    manual: FakeThread, timeout: object, error: type[Exception]
) -> None:
    """A clear error naming ``timeout``; the job and the client go on."""
    with manual.client() as client:
        job = client.submit(T2I, GOOD)
        with pytest.raises(error, match="timeout"):
            job.wait(timeout=timeout)  # type: ignore[arg-type]
        manual.finish(job.task_id)
        assert job.wait(timeout=10**400).status is TaskStatus.SUCCESS  # past float: forever


def _blocked_in_wait(thread: threading.Thread) -> bool:
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code is rh_sync.RunningHub._wait.__code__:
            return True
        frame = frame.f_back
    return False


def test_ctrl_c_in_wait_cancels_that_wait_and_leaves_the_client_usable(
    manual: FakeThread,
) -> None:
    """KeyboardInterrupt comes out of wait(); the portal is not wedged; the job goes on."""
    main = threading.main_thread()
    assert threading.current_thread() is main
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with manual.client() as client:
        job = client.submit(T2I, GOOD)

        def press_ctrl_c() -> None:
            # Each poll of the task is a moment to look whether main blocks in wait().
            while True:
                seen = manual.task(job.task_id).query_count

                def polled_again(f: FakeRunningHub, seen: int = seen) -> bool:
                    return f.tasks[job.task_id].query_count > seen

                manual.wait_for(polled_again)
                if _blocked_in_wait(main):
                    break
            signal.pthread_kill(main.ident or 0, signal.SIGINT)

        presser = threading.Thread(target=press_ctrl_c)
        presser.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                job.wait()
        finally:
            presser.join(timeout=10)
        assert client.query(job.task_id).status is TaskStatus.RUNNING
        assert client.statistics().poller.waiting == 0  # the interrupted wait is gone
        manual.finish(job.task_id)
        assert job.wait(timeout=10).status is TaskStatus.SUCCESS
    assert client_threads() == []


def test_breaking_out_of_run_many_stops_the_batch(fake: FakeThread) -> None:
    """Leaving the loop closes the batch in the client's loop: no more params are pulled."""
    pulled: list[int] = []

    def params() -> Iterator[dict[str, Any]]:
        for i in range(50):
            pulled.append(i)
            yield dict(GOOD, prompt=f"fox {i}")

    with fake.client() as client:
        for item in client.run_many(T2I, params(), window=2):
            assert item.ok
            break
        taken = len(pulled)
        assert taken <= 6
        # While more jobs run, a batch still going would pull more params.
        for _ in range(3):
            client.run(T2I, GOOD)
        assert len(pulled) == taken


def test_account_queue_status_upload_and_download(fake: FakeThread, tmp_path: Path) -> None:
    """The other calls go through too."""
    with fake.client() as client:
        assert client.account().api_type
        assert client.queue_status().concurrent_limit >= 1
        uploaded = client.upload(render_png("sync"), filename="fox.png")
        assert uploaded.download_url
        result = client.text_to_image("a fox", resolution="1k")
        (path,) = client.download(result, tmp_path)
        assert path.read_bytes().startswith(b"\x89PNG")
        job = client.submit_text_to_image("a fox", resolution="1k")
        assert job.wait().task_id == job.task_id
        assert client.edit_image("make it blue", [uploaded.download_url]).outputs


def test_cancel_through_the_blocking_job(manual: FakeThread) -> None:
    """``Job.cancel`` asks RunningHub; the wait then raises TaskCancelledError."""
    with manual.client() as client:
        job = client.submit(T2I, GOOD)
        assert job.cancel() is True
        with pytest.raises(runninghub_async.TaskCancelledError):
            job.wait()
    assert manual.task(job.task_id).status == "CANCEL"


def test_an_unclosed_client_warns_when_collected_without_doing_io(fake: FakeThread) -> None:
    """``__del__`` only warns; the client's thread is left alone (closed here by hand)."""
    holder = [fake.client()]
    holder[0].run(T2I, GOOD)
    stack = holder[0]._stack
    assert stack is not None
    with pytest.warns(ResourceWarning, match="unclosed"):
        holder.clear()
    gc.collect()
    assert len(client_threads()) == 1
    stack.close()
    assert client_threads() == []


def test_every_async_method_has_a_blocking_twin() -> None:
    """Same names, same parameters (kinds and defaults) as the async client."""
    for name, method in inspect.getmembers(runninghub_async.RunningHub, inspect.isfunction):
        if name.startswith("_"):
            continue
        twin = getattr(rh_sync.RunningHub, name, None)
        assert twin is not None, f"sync.RunningHub has no {name}"
        expected = [
            (p.name, p.kind, p.default) for p in inspect.signature(method).parameters.values()
        ]
        actual = [(p.name, p.kind, p.default) for p in inspect.signature(twin).parameters.values()]
        assert actual == expected, name
        assert inspect.getdoc(twin), name
    for name in ("task_id", "endpoint", "params", "done", "wait", "cancel"):
        assert hasattr(rh_sync.Job, name), name


def test_a_failed_start_leaves_no_thread_and_a_closed_client(fake: FakeThread) -> None:
    """If opening fails (a bad key found by ``max_in_flight="auto"``), the error comes out
    as itself, the thread is gone, and the client is closed for good."""
    before = set(threading.enumerate())
    client = fake.client(api_key="not-a-key", max_in_flight="auto")
    with pytest.raises((runninghub_async.AuthenticationError, ExceptionGroup)) as info:
        client.run(T2I, GOOD)
    # The async client's __aenter__ currently wraps it in an ExceptionGroup; both are its own.
    error = info.value
    if isinstance(error, ExceptionGroup):
        (error,) = error.exceptions
    assert isinstance(error, runninghub_async.AuthenticationError)
    assert set(threading.enumerate()) == before
    with pytest.raises(ClientClosedError):
        client.run(T2I, GOOD)
