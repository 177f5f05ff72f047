"""run_many under the account's concurrency limit: every job resolves once, nothing leaks."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from runninghub_async import InvalidParametersError, RunningHub
from runninghub_async.testing import FakeRunningHub

from .conftest import FAST_POLL, FAST_RETRY

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"


def prompts(n: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"prompt": f"image {i}", "resolution": "1k"}


def _client(fake: FakeRunningHub, **overrides: Any) -> RunningHub:
    """A client of *fake* with the tests' fast cadence (override by keyword)."""
    options: dict[str, Any] = {
        "api_key": fake.api_key,
        "base_url": fake.base_url,
        "requests_per_second": None,
        "poll": FAST_POLL,
        "retry": FAST_RETRY,
    }
    return RunningHub(**{**options, **overrides})


async def run_batch(
    fake: FakeRunningHub, n: int, max_in_flight: int
) -> tuple[list[Any], RunningHub]:
    client = _client(fake, max_in_flight=max_in_flight, seed=3)
    async with client:
        items = [item async for item in client.run_many(T2I, prompts(n))]
    return items, client


@pytest.mark.parametrize("max_in_flight", [20, 50], ids=["limit-known", "limit-unknown"])
async def test_500_jobs_under_a_server_limit_of_20(max_in_flight: int) -> None:
    """500 jobs all succeed once each; the fake never runs more than 20; 421s stay inside."""
    async with FakeRunningHub(duration=(0.005, 0.06), concurrency_limit=20, seed=11) as fake:
        items, client = await run_batch(fake, 500, max_in_flight)
        stats = fake.stats
    assert sorted(item.index for item in items) == list(range(500))
    assert all(item.ok for item in items), [item.error for item in items if not item.ok][:3]
    assert len({item.task_id for item in items}) == 500
    assert stats.accepted_tasks == 500
    assert stats.max_running_per_key[fake.api_key] <= 20
    rejected = stats.rejections.get("421", 0)
    assert client.statistics().limiter.rejections_absorbed == rejected
    if max_in_flight == 50:
        assert rejected > 0  # the client had to find the limit by itself
    assert client.statistics().submits_sent == 500 + rejected


async def test_one_failing_item_never_stops_the_batch(client: RunningHub) -> None:
    """Invalid items come back with an error; the others succeed."""
    params = [
        {"prompt": "fine", "resolution": "1k"},
        {"prompt": "bad", "resolution": "9k"},
        {"prompt": "fine too", "resolution": "2k"},
    ]
    items = {item.index: item async for item in client.run_many(T2I, params)}
    assert items[0].ok
    assert items[2].ok
    assert isinstance(items[1].error, InvalidParametersError)
    assert items[1].result is None
    assert items[1].params == params[1]


async def test_input_is_pulled_lazily(client: RunningHub) -> None:
    """An endless input is consumed a window at a time; breaking out stops the batch."""
    pulled = 0

    def endless() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield {"prompt": f"p{i}", "resolution": "1k"}

    received = 0
    batch = client.run_many(T2I, endless(), window=4)
    async for _ in batch:
        received += 1
        if received == 10:
            break
    await batch.aclose()
    assert pulled <= received + 4 + 1


async def test_async_iterable_input(client: RunningHub) -> None:
    """run_many also takes an async iterable."""

    async def source() -> Any:
        for i in range(3):
            await anyio.lowlevel.checkpoint()
            yield {"prompt": f"async {i}", "resolution": "1k"}

    items = [item async for item in client.run_many(T2I, source())]
    assert sorted(i.index for i in items) == [0, 1, 2]
    assert all(i.ok for i in items)


async def test_failing_input_iterator_is_reraised_after_running_items(client: RunningHub) -> None:
    """An exception from the caller's iterator reaches the caller after items in flight."""

    def broken() -> Iterator[dict[str, Any]]:
        yield {"prompt": "one", "resolution": "1k"}
        raise LookupError("input file vanished")

    seen = []

    async def consume() -> None:
        async for item in client.run_many(T2I, broken()):
            seen.append(item)

    with pytest.raises(LookupError, match="vanished"):
        await consume()
    assert [item.index for item in seen] == [0]


async def test_a_generator_that_reuses_one_dict_gets_each_item_sent_as_it_was_pulled(
    tmp_path: Any,
) -> None:
    """Items are copied when pulled: the journal lookup in between cannot mix them up."""
    from runninghub_async import FileJournal

    def reused(n: int) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"resolution": "1k"}
        for i in range(n):
            params["prompt"] = f"image {i}"
            yield params

    async with FakeRunningHub(duration=(0.005, 0.02), seed=4) as fake:
        # The journal is entered with the client.
        async with _client(fake, journal=FileJournal(tmp_path / "journal.jsonl")) as client:
            items = [item async for item in client.run_many(T2I, reused(8))]
        sent = sorted(str(task.params["prompt"]) for task in fake.tasks.values())
    assert all(item.ok for item in items)
    assert sent == sorted(f"image {i}" for i in range(8))
    assert {item.index: item.params["prompt"] for item in items} == {
        i: f"image {i}" for i in range(8)
    }


async def test_a_system_exit_from_the_params_reaches_the_consumer_and_spares_the_client(
    fake: FakeRunningHub,
) -> None:
    def exiting() -> Iterator[dict[str, Any]]:
        yield {"prompt": "one", "resolution": "1k"}
        raise SystemExit(3)

    async with _client(fake) as client:
        with pytest.raises(SystemExit):
            async for _ in client.run_many(T2I, exiting()):
                pass
        assert (await client.run(T2I, {"prompt": "after", "resolution": "1k"})).outputs
