"""Controls for deterministic tests: finish/fail, wait_for, stats, the /_fake/ HTTP API."""

from __future__ import annotations

import random
import time

import aiohttp
import anyio
import attrs
import pytest

from runninghub_async.testing import FakeRunningHub, FakeStats, FakeTask, lognormal

from ._support import query, submit

pytestmark = pytest.mark.anyio


async def test_finish_and_fail_reject_unknown_and_finished_tasks() -> None:
    """finish/fail raise KeyError for an unknown task and ValueError for a finished one."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        with pytest.raises(KeyError):
            fake.finish("1")
        with pytest.raises(KeyError):
            fake.fail("1")
        fake.finish(task_id)
        with pytest.raises(ValueError, match="already SUCCESS"):
            fake.finish(task_id)
        with pytest.raises(ValueError, match="already SUCCESS"):
            fake.fail(task_id)


async def test_wait_for_times_out() -> None:
    """wait_for raises TimeoutError when the predicate never holds."""
    async with FakeRunningHub() as fake:
        with pytest.raises(TimeoutError):
            await fake.wait_for(lambda f: f.stats.accepted_tasks > 0, timeout=0.05)


async def test_wait_for_wakes_on_requests() -> None:
    """wait_for in one task sees submits made by another."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        async with anyio.create_task_group() as tg:

            async def submit_three() -> None:
                for _ in range(3):
                    await submit(http, fake)

            tg.start_soon(submit_three)
            await fake.wait_for(lambda f: f.stats.accepted_tasks >= 3)
        assert fake.stats.running == 3


async def test_max_running_per_key_tracks_the_peak() -> None:
    """max_running_per_key is the most unfinished tasks each key had at once."""
    fake = FakeRunningHub(api_keys=("a", "b"), duration=None)
    async with fake, aiohttp.ClientSession() as http:
        a_ids = [(await submit(http, fake, key="a"))["taskId"] for _ in range(3)]
        for task_id in a_ids:
            fake.finish(task_id)
        await submit(http, fake, key="a")
        await submit(http, fake, key="b")
    stats = fake.stats
    assert stats.max_running_per_key == {"a": 3, "b": 1}
    assert stats.running == 2
    assert stats.succeeded == 3


async def test_stats_is_a_frozen_snapshot() -> None:
    """fake.stats does not change after it was taken; tasks are frozen snapshots too."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        before = fake.stats
        task_id = (await submit(http, fake))["taskId"]
        task = fake.tasks[task_id]
        fake.finish(task_id)
        assert isinstance(before, FakeStats)
        assert isinstance(task, FakeTask)
        assert before.accepted_tasks == 0
        assert task.status == "RUNNING"
        assert fake.tasks[task_id].status == "SUCCESS"
        assert fake.stats.requests_total == 1
        assert "test-key" not in repr(task)


async def test_control_api_stats_and_tasks() -> None:
    """GET /_fake/stats and /_fake/tasks report counters and tasks with epoch times."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        fake.finish(task_id)
        async with http.get(f"{fake.base_url}/_fake/stats") as response:
            stats = await response.json()
        async with http.get(f"{fake.base_url}/_fake/tasks") as response:
            tasks = await response.json()
    assert stats["accepted_tasks"] == 1
    assert stats["requests_total"] == 1  # control calls are not counted
    assert set(stats) == {field.name for field in attrs.fields(FakeStats)}
    (task,) = tasks
    assert task["id"] == task_id
    assert task["status"] == "SUCCESS"
    assert abs(task["finished_at"] - time.time()) < 60
    assert task["submitted_at"] <= task["started_at"] <= task["finished_at"]


async def test_control_api_finish_and_fail() -> None:
    """POST /_fake/tasks/<id>/finish and /fail end tasks; unknown 404, finished 409."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        a = (await submit(http, fake))["taskId"]
        b = (await submit(http, fake))["taskId"]
        base = f"{fake.base_url}/_fake/tasks"
        async with http.post(f"{base}/{a}/finish") as response:
            assert response.status == 200
            assert await response.json() == {"taskId": a, "status": "SUCCESS"}
        async with http.post(f"{base}/{b}/fail", json={"code": "1501"}) as response:
            assert response.status == 200
        assert (await query(http, fake, b))["errorCode"] == "1501"
        async with http.post(f"{base}/{a}/finish") as response:
            assert response.status == 409
        async with http.post(f"{base}/1/fail") as response:
            assert response.status == 404


async def test_control_api_faults() -> None:
    """POST /_fake/faults adds a fault, DELETE clears them, a bad fault is a 400."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/_fake/faults"
        async with http.post(url, json={"kind": "http_503", "route": "query"}) as response:
            assert response.status == 200
        assert [f.kind for f in fake.faults] == ["http_503"]
        async with http.post(url, json={"kind": "nope"}) as response:
            assert response.status == 400
        async with http.post(url, json={"kind": "slow", "color": "red"}) as response:
            assert response.status == 400
        async with http.delete(url) as response:
            assert response.status == 200
        assert fake.faults == ()


async def test_seed_makes_runs_identical() -> None:
    """Two fakes with the same seed hand out the same ids and client ids and fail the same tasks."""

    async def run() -> list[tuple[str, str, str]]:
        fake = FakeRunningHub(duration=0.0, failure_rate=0.5, seed=42)
        async with fake, aiohttp.ClientSession() as http:
            answers = [await submit(http, fake) for _ in range(12)]
            await fake.wait_for(lambda f: f.stats.running == 0)
            return [(a["taskId"], a["clientId"], fake.tasks[a["taskId"]].status) for a in answers]

    first = await run()
    assert first == await run()
    assert {status for _, _, status in first} == {"SUCCESS", "FAILED"}


def test_lognormal_is_deterministic_per_task_and_bounded() -> None:
    """lognormal draws per task id, stays within floor and cap, and centres on the median."""
    draw = lognormal(2.0, 0.5, cap=5.0, floor=0.5)
    tasks = [_task(str(10**18 + i)) for i in range(400)]
    values = [draw(t) for t in tasks]
    assert values == [draw(t) for t in tasks]
    assert all(0.5 <= v <= 5.0 for v in values)
    assert 1.6 < sorted(values)[200] < 2.5
    seeded = lognormal(2.0, 0.5, rng=random.Random(1))
    assert seeded(tasks[0]) == lognormal(2.0, 0.5, rng=random.Random(1))(tasks[0])


def test_lognormal_rejects_bad_parameters() -> None:
    """lognormal refuses a non-positive median, negative sigma or cap below floor."""
    for args in ((0.0, 0.1), (1.0, -0.1), (1.0, 0.1, 0.5, 1.0)):
        with pytest.raises(ValueError):  # noqa: PT011
            lognormal(*args)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_keys": ()},
        {"api_keys": "test-key"},
        {"duration": -1.0},
        {"duration": (2.0, 1.0)},
        {"queue_time": "soon"},
        {"concurrency_limit": 0},
        {"rate_limit": 0.0},
        {"failure_rate": 1.5},
        {"failure_rate": 0.5, "failure_codes": ()},
        {"key_types": {"test-key": "GOLD"}},
        {"webhook_attempts": 0},
        {"port": 70000},
    ],
)
def test_bad_knobs_are_rejected(kwargs: dict[str, object]) -> None:
    """Out-of-range constructor knobs raise ValueError before anything starts."""
    with pytest.raises(ValueError):  # noqa: PT011
        FakeRunningHub(**kwargs)  # type: ignore[arg-type]


async def test_base_url_only_while_running() -> None:
    """base_url raises outside 'async with'; the fake cannot be entered twice at once."""
    fake = FakeRunningHub()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    async with fake:
        assert fake.base_url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError):
            await fake.__aenter__()
    with pytest.raises(RuntimeError):
        _ = fake.base_url


async def test_many_concurrent_tasks_all_finish() -> None:
    """300 concurrent submits with short random durations all finish; counts end at zero."""
    fake = FakeRunningHub(duration=(0.0, 0.05), queue_time=(0.0, 0.02), seed=5)
    async with fake, aiohttp.ClientSession() as http:
        async with anyio.create_task_group() as tg:
            for _ in range(300):
                tg.start_soon(submit, http, fake)
        await fake.wait_for(lambda f: f.stats.succeeded == 300)
    stats = fake.stats
    assert (stats.accepted_tasks, stats.running, stats.queued) == (300, 0, 0)
    assert all(t.finished_at is not None for t in fake.tasks.values())


async def test_exception_inside_the_block_propagates_unwrapped() -> None:
    """An error raised inside 'async with fake' reaches the caller as itself."""
    with pytest.raises(LookupError):
        async with FakeRunningHub():
            raise LookupError("boom")


def _task(task_id: str) -> FakeTask:
    return FakeTask(
        task_id=task_id,
        api_key="k",
        endpoint="e",
        params={},
        status="QUEUED",
        submitted_at=0.0,
        started_at=None,
        finished_at=None,
        error_code="",
        error_message="",
        failed_reason={},
        webhook_url=None,
        outputs=(),
        query_count=0,
    )
