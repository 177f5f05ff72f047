"""Shared fixtures: the fake server on 127.0.0.1 and clients with a fast poll cadence."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from runninghub_async import PollPolicy, RetryPolicy, RunningHub
from runninghub_async.testing import FakeRunningHub

from .redis_support import fresh_key, own_redis_server, redis_client, redis_server  # noqa: F401

# Fast enough that tests finish in milliseconds, slow enough not to spin.
FAST_POLL = PollPolicy(
    target_delay=0.01,
    typical_duration=0.03,
    min_interval=0.01,
    max_interval=0.1,
    not_found_grace=0.5,
)
FAST_RETRY = RetryPolicy(attempts=4, initial=0.01, maximum=0.05)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture
async def fake() -> AsyncIterator[FakeRunningHub]:
    """A fake RunningHub with short task durations."""
    async with FakeRunningHub(duration=(0.01, 0.05), seed=1) as server:
        yield server


@pytest.fixture
async def manual() -> AsyncIterator[FakeRunningHub]:
    """A fake whose tasks run until the test finishes or fails them by hand."""
    async with FakeRunningHub(duration=None, seed=2) as server:
        yield server


ClientFactory = Callable[..., RunningHub]


@pytest.fixture
def make_client(fake: FakeRunningHub) -> ClientFactory:
    """Build clients bound to the fake, with test-friendly defaults (override by keyword)."""

    def build(**overrides: Any) -> RunningHub:
        options: dict[str, Any] = {
            "api_key": fake.api_key,
            "base_url": fake.base_url,
            "max_in_flight": 8,
            "requests_per_second": None,
            "poll": FAST_POLL,
            "retry": FAST_RETRY,
            "seed": 7,
        }
        options.update(overrides)
        return RunningHub(**options)

    return build


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[RunningHub]:
    """An open client bound to the fake."""
    async with make_client() as opened:
        yield opened
