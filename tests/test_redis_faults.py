"""Redis misbehaving under the shared limiter and the CLI's shared batch: a real redis-server
restarted empty, stopped, or dropping every connection at once.

Two limiter instances in one test stand for two processes (as in ``test_redis_limiter``).
The batch's stream is driven directly here; ``test_distributed`` runs whole CLI workers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import pytest
import redis.asyncio

from runninghub_async._cli._stream import BatchLostError, BatchStream
from runninghub_async.redis import CoordinationUnavailableError, RedisLimiter

from .redis_support import RedisServer

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def limiters(
    server: RedisServer, key: str, limits: list[int], **options: Any
) -> AsyncIterator[list[RedisLimiter]]:
    settings: dict[str, Any] = {"requests_per_second": None, "poll_interval": 0.2}
    settings.update(options)
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                RedisLimiter.from_url(server.url, api_key=key, max_in_flight=n, **settings)
            )
            for n in limits
        ]


@asynccontextmanager
async def connected(server: RedisServer) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(server.url, socket_timeout=2.0)
    try:
        yield client
    finally:
        await client.aclose()


async def script_calls(client: redis.asyncio.Redis) -> int:
    """Lua scripts run by the server since it started (its stats start afresh on a restart)."""
    stats = await client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.startswith("cmdstat_eval"))


async def leased(client: redis.asyncio.Redis, limiter: RedisLimiter) -> int:
    return int(await client.zcard(limiter.namespace + "leases"))


async def _rebuilt_or_spinning(
    client: redis.asyncio.Redis, limiter: RedisLimiter, leases: int
) -> bool:
    """The leases are back, or the limiters spin (then the test's count fails, not a timeout)."""
    return await leased(client, limiter) == leases or await script_calls(client) >= 1000


# -- the limiter ------------------------------------------------------------------------


async def test_a_restart_empty_is_resynced_at_once_then_redis_is_left_alone(
    own_redis_server: RedisServer, fresh_key: str
) -> None:
    """After Redis restarts empty, each process puts its leases back in one re-sync, at once
    (not at its heartbeat, 10 s away here), and then runs no script until it has work."""
    server = own_redis_server
    async with limiters(server, fresh_key, [3, 3], lease=30.0) as (a, b):
        held = [await a.acquire_slot(), await a.acquire_slot()]
        server.restart()
        async with connected(server) as client:
            await _until(lambda: _rebuilt_or_spinning(client, a, 2))
            assert await script_calls(client) < 20, "the limiters hammer Redis after a restart"
            assert await leased(client, a) == 2
            before = await script_calls(client)
            await anyio.sleep(0.5)  # a window to count in, not a wait for something
            assert await script_calls(client) - before <= 2
            # The rebuilt counts hold: one slot left for b, then none.
            held[0].release()
            await _until(lambda: _equals(leased(client, a), 1))
            with anyio.fail_after(2):
                extra = [await b.acquire_slot(), await b.acquire_slot()]
            with anyio.move_on_after(0.4):
                await b.acquire_slot()
                pytest.fail("the restart let the processes over the limit")
            before = await script_calls(client)
            await anyio.sleep(0.5)  # a window to count in, not a wait for something
            assert await script_calls(client) - before <= 2
            for slot in [held[1], *extra]:
                slot.release()


async def test_a_release_after_a_restart_does_not_spin(
    own_redis_server: RedisServer, fresh_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A release is the first thing to reach a restarted Redis: one re-sync follows, no storm,
    and no warning that a lease lapsed (Redis forgot it; it did not lapse)."""
    server = own_redis_server
    async with limiters(server, fresh_key, [3], lease=30.0) as (a,):
        held = [await a.acquire_slot(), await a.acquire_slot()]
        with caplog.at_level(logging.WARNING, logger="runninghub_async"):
            server.restart()
            held[0].release()
            async with connected(server) as client:
                await _until(lambda: _rebuilt_or_spinning(client, a, 1))
                before = await script_calls(client)
                await anyio.sleep(0.5)  # a window to count in, not a wait for something
                after = await script_calls(client)
                assert after < 20, "the limiter hammers Redis after a restart"
                assert after - before <= 2
                assert await leased(client, a) == 1
        assert "lapsed" not in caplog.text
        held[1].release()


async def test_processes_with_different_limits_are_warned(
    own_redis_server: RedisServer, fresh_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes on one key disagree on max_in_flight: each logs both limits."""
    with caplog.at_level(logging.WARNING, logger="runninghub_async"):
        async with limiters(own_redis_server, fresh_key, [1, 3], lease=0.3):
            await _until(lambda: _logged(caplog, "this one has 1, another has 3"))
            await _until(lambda: _logged(caplog, "this one has 3, another has 1"))
    assert len([r for r in caplog.records if "disagree" in r.getMessage()]) == 2


async def test_a_limit_set_after_joining_is_not_a_disagreement(
    own_redis_server: RedisServer, fresh_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``max_in_flight="auto"`` sets the limit once the client is open: no warning for that."""
    with caplog.at_level(logging.WARNING, logger="runninghub_async"):
        async with limiters(own_redis_server, fresh_key, [3, 1], lease=0.3) as (_, late):
            late.set_limit(3)
            async with connected(own_redis_server) as client:
                limits = late.namespace + "limits"
                await _until(lambda: _equals(client.hvals(limits), [b"3", b"3"]))  # both 3
            await anyio.sleep(0.5)  # five heartbeats, in which no warning may come
    assert "disagree" not in caplog.text


# -- the CLI's shared batch ---------------------------------------------------------------


async def _lines() -> AsyncIterator[tuple[int, str]]:
    for index in range(4):
        yield index + 1, f"line {index}"


@asynccontextmanager
async def batch(
    server: RedisServer, worker: str = "w1", **options: Any
) -> AsyncIterator[BatchStream]:
    async with connected(server) as client:
        settings: dict[str, Any] = {"claim_idle": 5.0, "unavailable_timeout": 5.0}
        settings.update(options)
        stream = BatchStream(client, batch="b", worker=worker, **settings)
        await stream.setup()
        assert await stream.load(_lines)
        yield stream


async def _kill_clients(server: RedisServer) -> None:
    async with connected(server) as admin:
        killed = await admin.client_kill_filter(_type="normal", skipme=True)
        assert int(killed) >= 1


async def test_a_dropped_connection_is_retried(own_redis_server: RedisServer) -> None:
    """Redis drops every connection (a network blip): every call of the stream carries on."""
    async with batch(own_redis_server) as stream:
        entries = stream.entries()
        first = await anext(entries)
        await _kill_clients(own_redis_server)
        assert (await stream.progress()).pending == 1
        await _kill_clients(own_redis_server)
        assert await stream.settle(first[0], "done", {"status": "done"}, None)
        await _kill_clients(own_redis_server)
        second = await anext(entries)
        assert second[0] == 1
        await _kill_clients(own_redis_server)
        await stream.hand_back()
        await entries.aclose()
        await _kill_clients(own_redis_server)
        manifest, failures = await stream.records()
        assert list(manifest) == [0]
        assert failures == {}


async def test_an_unreachable_redis_is_a_named_error_within_the_bound(
    own_redis_server: RedisServer,
) -> None:
    """Redis gone for good: a call retries for unavailable_timeout, then names the problem."""
    async with batch(own_redis_server, unavailable_timeout=0.5) as stream:
        own_redis_server.stop()
        start = time.monotonic()
        with anyio.fail_after(5), pytest.raises(CoordinationUnavailableError, match=r"0\.5 s"):
            await stream.progress()
        assert time.monotonic() - start >= 0.45
        # The outage is the stream's, not the call's: the next call gives up at once.
        start = time.monotonic()
        with anyio.fail_after(5), pytest.raises(CoordinationUnavailableError):
            await stream.settle(0, "done", {"status": "done"}, None)
        assert time.monotonic() - start < 0.45


async def test_a_restart_empty_is_a_lost_batch(own_redis_server: RedisServer) -> None:
    """Redis restarted without its data: the stream says the batch is lost, whatever the call."""
    async with batch(own_redis_server) as stream:
        own_redis_server.restart()
        with anyio.fail_after(5), pytest.raises(BatchLostError, match="appendonly"):
            await stream.progress()
        with anyio.fail_after(5), pytest.raises(BatchLostError):
            await anext(stream.entries())
        with anyio.fail_after(5), pytest.raises(BatchLostError):
            await stream.settle(0, "done", {"status": "done"}, None)


async def test_a_batch_set_up_afresh_after_a_restart_is_not_taken_for_the_old_one(
    own_redis_server: RedisServer,
) -> None:
    """A worker that starts after Redis lost the batch sets it up again; the workers of the
    old one stop instead of redoing (and paying again for) the lines they had done."""
    async with batch(own_redis_server, "old") as old:
        own_redis_server.restart()
        async with batch(own_redis_server, "new") as new:
            assert (await new.progress()).total == 4
            with anyio.fail_after(5), pytest.raises(BatchLostError):
                await old.progress()


async def _until(condition: Any) -> None:
    with anyio.fail_after(5):
        while not await condition():  # noqa: ASYNC110 - state in Redis or a log: no event
            await anyio.sleep(0.01)


async def _equals(value: Any, expected: object) -> bool:
    return bool(await value == expected)


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    await anyio.lowlevel.checkpoint()
    return text in caplog.text
