"""RedisLimiter against a real redis-server: slots, fairness, leases, window, rate, failures.

Two limiter instances in one test stand for two processes: each has its own
process id, worker and pub/sub listener, and they share only what is in Redis.
One test kills a real child process with SIGKILL.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio
from anyio.streams.buffered import BufferedByteReceiveStream

from runninghub_async.redis import CoordinationUnavailableError, RedisLimiter, RedisSlot

from .redis_support import RedisServer, free_port, until

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent


def make(server: RedisServer, key: str, **options: Any) -> RedisLimiter:
    settings: dict[str, Any] = {
        "max_in_flight": 2,
        "requests_per_second": None,
        "lease": 3.0,
        "poll_interval": 0.2,
    }
    settings.update(options)
    return RedisLimiter.from_url(server.url, api_key=key, **settings)


@asynccontextmanager
async def limiters(
    server: RedisServer, key: str, count: int, **options: Any
) -> AsyncIterator[list[RedisLimiter]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(make(server, key, **options)) for _ in range(count)]


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    ordered = sorted(stamps)
    best = start = 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def queued(client: redis.asyncio.Redis, limiter: RedisLimiter) -> int:
    return int(await client.zcard(limiter.namespace + "queue"))


async def leased(client: redis.asyncio.Redis, limiter: RedisLimiter) -> int:
    return int(await client.zcard(limiter.namespace + "leases"))


async def test_namespace_hides_the_key(redis_server: RedisServer, fresh_key: str) -> None:
    """Redis sees a hash of the API key, never the key itself."""
    async with limiters(redis_server, fresh_key, 1) as (limiter,):
        slot = await limiter.acquire_slot()
        client = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            keys = [k.decode() if isinstance(k, bytes) else k for k in await client.keys("*")]
        finally:
            await client.aclose()
        assert keys
        assert not any(fresh_key in k for k in keys)
        assert any(k.startswith(limiter.namespace) for k in keys)
        assert fresh_key not in repr(limiter)
        slot.release()


async def test_slots_are_shared_and_fifo_across_processes(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, fresh_key: str
) -> None:
    """Two processes share max_in_flight; a freed slot goes to the oldest waiter, wherever it is."""
    async with limiters(redis_server, fresh_key, 2, max_in_flight=2) as (a, b):
        held = [await a.acquire_slot(), await b.acquire_slot()]
        order: list[str] = []

        async def wait(limiter: RedisLimiter, name: str) -> None:
            slot = await limiter.acquire_slot()
            order.append(name)
            held.append(slot)

        async with anyio.create_task_group() as tg:
            for name, limiter in [("b1", b), ("a1", a), ("b2", b)]:
                tg.start_soon(wait, limiter, name)
                expected = len(order) + 1 + ["b1", "a1", "b2"].index(name)
                await until(partial(_queued_at_least, redis_client, a, expected))
            assert order == []
            assert a.statistics().in_flight == 1
            assert b.statistics().waiting_for_slot == 2
            held.pop(0).release()  # a's slot: b1 is first in line
            await until(lambda: _is(order, ["b1"]))
            held.pop(0).release()  # b's first slot: a1 next
            await until(lambda: _is(order, ["b1", "a1"]))
            held.pop(0).release()
        assert order == ["b1", "a1", "b2"]
        for slot in held:
            slot.release()


async def _queued_at_least(client: redis.asyncio.Redis, limiter: RedisLimiter, n: int) -> bool:
    return await queued(client, limiter) >= n


async def _is(value: object, expected: object) -> bool:
    await anyio.lowlevel.checkpoint()
    return value == expected


async def test_front_queues_first(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, fresh_key: str
) -> None:
    """A job put back after a 421 (front=True) goes before every ordinary waiter."""
    async with limiters(redis_server, fresh_key, 2, max_in_flight=1) as (a, b):
        slot = await a.acquire_slot()
        order: list[str] = []

        async def wait(limiter: RedisLimiter, name: str, front: bool) -> None:
            got = await limiter.acquire_slot(front=front)
            order.append(name)
            got.release()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, a, "ordinary", False)
            await until(lambda: _queued_at_least(redis_client, a, 1))
            tg.start_soon(wait, b, "put back", True)
            await until(lambda: _queued_at_least(redis_client, a, 2))
            slot.release()
        assert order == ["put back", "ordinary"]


async def test_cancelled_waiters_leave_and_pass_slots_on(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, fresh_key: str
) -> None:
    """Waiters cancelled at random moments (some just as they are granted) never leak a slot."""
    rng = random.Random(5)
    outcomes = {"granted": 0, "cancelled waiting": 0}
    async with limiters(redis_server, fresh_key, 2, max_in_flight=3) as pair:

        async def churn(limiter: RedisLimiter) -> None:
            with anyio.move_on_after(rng.uniform(0, 0.05)):
                outcomes["cancelled waiting"] += 1
                slot = await limiter.acquire_slot(front=rng.random() < 0.2)
                outcomes["cancelled waiting"] -= 1
                outcomes["granted"] += 1
                try:
                    await anyio.sleep(rng.uniform(0, 0.01))
                finally:
                    slot.release()

        async with anyio.create_task_group() as tg:
            for _ in range(60):
                tg.start_soon(churn, rng.choice(pair))
        assert min(outcomes.values()) >= 10, outcomes
        # Every slot is free again: one process can hold all three at once.
        await until(lambda: _leased(redis_client, pair[0], 0))
        assert await queued(redis_client, pair[0]) == 0
        with anyio.fail_after(2):
            slots = [await pair[0].acquire_slot() for _ in range(3)]
        assert pair[0].statistics().in_flight == 3
        for slot in slots:
            slot.release()


async def _leased(client: redis.asyncio.Redis, limiter: RedisLimiter, n: int) -> bool:
    return await leased(client, limiter) == n


async def test_release_is_idempotent_and_freed_on_exit(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, fresh_key: str
) -> None:
    """A second release() is ignored; leaving the limiter gives back what it held."""
    async with limiters(redis_server, fresh_key, 1, max_in_flight=2) as (a,):
        slot = await a.acquire_slot()
        other = await a.acquire_slot()
        slot.release()
        slot.release()
        await until(lambda: _leased(redis_client, a, 1))
        assert a.statistics().in_flight == 1
        assert isinstance(other, RedisSlot)
    assert await leased(redis_client, a) == 0


KILLED_CHILD = """
import sys
import anyio
from runninghub_async.redis import RedisLimiter

async def main() -> None:
    url, key = sys.argv[1], sys.argv[2]
    limiter = RedisLimiter.from_url(url, api_key=key, max_in_flight=2,
                                    requests_per_second=None, lease=1.0)
    async with limiter:
        await limiter.acquire_slot()
        await limiter.acquire_slot()
        print("held", flush=True)
        await anyio.sleep_forever()

anyio.run(main)
"""


async def test_a_killed_process_slots_come_back_within_the_lease(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, fresh_key: str
) -> None:
    """SIGKILL a process holding every slot: another gets them once its leases lapse."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", textwrap.dedent(KILLED_CHILD), redis_server.url, fresh_key]
    async with await anyio.open_process(command, stdout=subprocess.PIPE, env=env) as child:
        try:
            assert child.stdout is not None
            with anyio.fail_after(20):
                output = BufferedByteReceiveStream(child.stdout)
                assert await output.receive_until(b"\n", 100) == b"held"
        finally:
            child.send_signal(signal.SIGKILL)
            await child.wait()
    killed_at = time.monotonic()
    async with limiters(redis_server, fresh_key, 1, max_in_flight=2) as (survivor,):
        assert await leased(redis_client, survivor) == 2
        with anyio.fail_after(1.0 + 1.5):  # the lease, plus the poll and slack
            slots = [await survivor.acquire_slot() for _ in range(2)]
        waited = time.monotonic() - killed_at
        assert waited > 0.3, "the dead process's slots were not held at all"
        for slot in slots:
            slot.release()


async def test_window_is_shared(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, fresh_key: str
) -> None:
    """A 421 in one process shrinks the window for all; accepted submits grow it back."""
    async with limiters(redis_server, fresh_key, 2, max_in_flight=4) as (a, b):
        slots = [await a.acquire_slot() for _ in range(3)]
        a.slot_rejected()  # the third submit got 421: two are really running
        window_key = a.namespace + "window"
        await until(lambda: _get_float(redis_client, window_key, 2.0))
        slots.pop().release()
        # b sees the shrunk window: with two held, it cannot take a third.
        with anyio.move_on_after(0.3):
            await b.acquire_slot()
            pytest.fail("a slot beyond the shrunk window was granted")
        assert b.statistics().window == 2
        for _ in range(6):
            b.slot_accepted()
        await until(lambda: _get_float(redis_client, window_key, 4.0))
        with anyio.fail_after(2):
            extra = await b.acquire_slot()
        assert b.statistics().window == 4
        for slot in [*slots, extra]:
            slot.release()


async def _get_float(client: redis.asyncio.Redis, key: str, expected: float) -> bool:
    value = await client.get(key)
    return value is not None and float(value) == pytest.approx(expected, abs=0.01)


async def test_request_rate_bound_across_processes(
    redis_server: RedisServer, fresh_key: str
) -> None:
    """Three processes, ten callers each, for 2 s: no 1 s window holds the rate's worth."""
    rate = 40.0
    stamps: list[float] = []
    async with limiters(redis_server, fresh_key, 3, requests_per_second=rate) as trio:

        async def caller(limiter: RedisLimiter, until_at: float) -> None:
            while time.monotonic() < until_at:
                await limiter.acquire_request()
                stamps.append(time.monotonic())

        end = time.monotonic() + 2.0
        async with anyio.create_task_group() as tg:
            for limiter in trio:
                for _ in range(10):
                    tg.start_soon(caller, limiter, end)
    assert max_in_window(stamps) <= rate
    # ...and the budget is used, not starved: most of (rate - burst) per second.
    assert len(stamps) >= 0.8 * 2.0 * (rate - rate / 20)


async def test_throttle_is_shared(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, fresh_key: str
) -> None:
    """A 1003 heard by one process pauses the others for retry_after and halves the rate."""
    async with limiters(redis_server, fresh_key, 2, requests_per_second=100.0) as (a, b):
        await b.acquire_request()
        a.throttled(retry_after=0.5)
        throttle_key = a.namespace + "throttle"
        await until(lambda: _exists(redis_client, throttle_key))
        start = time.monotonic()
        await b.acquire_request()
        assert time.monotonic() - start >= 0.35
        factor = float(await redis_client.hget(throttle_key, "f") or 0)
        assert factor == pytest.approx(0.5)
        assert a.statistics().rejections_absorbed == 1


async def _exists(client: redis.asyncio.Redis, key: str) -> bool:
    return bool(await client.exists(key))


async def test_restart_empty_rebuilds_from_live_holders(
    own_redis_server: RedisServer, fresh_key: str
) -> None:
    """Redis restarts with nothing: live processes put their leases back at their heartbeat."""
    server = own_redis_server
    async with limiters(server, fresh_key, 2, max_in_flight=3, lease=0.6) as (a, b):
        held = [await a.acquire_slot(), await a.acquire_slot()]
        server.restart()
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            await until(lambda: _leased(client, a, 2))
            # Only one slot is left for b, though Redis forgot everything.
            with anyio.fail_after(2):
                third = await b.acquire_slot()
            with anyio.move_on_after(0.4):
                await b.acquire_slot()
                pytest.fail("the restart let a process over the limit")
            for slot in [*held, third]:
                slot.release()
            await until(lambda: _leased(client, a, 0))
        finally:
            await client.aclose()


async def test_unreachable_redis(fresh_key: str, caplog: pytest.LogCaptureFixture) -> None:
    """No Redis: acquire_slot fails with a named error within the bound; the rate fails open."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    limiter = RedisLimiter.from_url(
        url,
        api_key=fresh_key,
        max_in_flight=2,
        requests_per_second=20.0,
        unavailable_timeout=0.5,
        socket_timeout=0.2,
    )
    with caplog.at_level(logging.WARNING, logger="runninghub_async"):
        async with limiter:
            start = time.monotonic()
            with pytest.raises(CoordinationUnavailableError), anyio.fail_after(3):
                await limiter.acquire_slot()
            assert 0.4 <= time.monotonic() - start < 2.0
            assert limiter.statistics().waiting_for_slot == 0
            start = time.monotonic()
            for _ in range(10):
                await limiter.acquire_request()
            # paced locally at a strict 20/s: ten calls take about half a second
            assert 0.3 <= time.monotonic() - start < 2.0
    assert "unreachable" in caplog.text


async def test_a_holder_paused_past_its_lease_loses_its_slot(
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    fresh_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A paused process's slot is reclaimed; on waking it learns so, and its release is a no-op."""
    async with limiters(redis_server, fresh_key, 2, max_in_flight=1, lease=0.5) as (a, b):
        slot = await a.acquire_slot()
        with caplog.at_level(logging.WARNING, logger="runninghub_async"):
            time.sleep(0.7)  # noqa: ASYNC251 - the whole process stops, as in a VM pause
            with anyio.fail_after(2):
                other = await b.acquire_slot()
            await until(lambda: _lost(slot))
            slot.release()
            assert a.statistics().in_flight == 0
            assert await leased(redis_client, a) == 1  # b's, untouched by a's release
        assert "reclaimed" in caplog.text
        other.release()


async def _lost(slot: RedisSlot) -> bool:
    await anyio.lowlevel.checkpoint()
    return slot.lost


async def test_not_open(redis_server: RedisServer, fresh_key: str) -> None:
    """acquire_slot outside `async with` is a clear error; a limiter is entered once."""
    limiter = make(redis_server, fresh_key)
    with pytest.raises(RuntimeError, match="not open"):
        await limiter.acquire_slot()
    async with limiter:
        pass
    with pytest.raises(RuntimeError, match="only once"):
        async with limiter:
            pass


def test_options_are_checked() -> None:
    """Nonsense limits are refused at construction."""
    build: Callable[..., RedisLimiter] = RedisLimiter.from_url
    with pytest.raises(ValueError, match="max_in_flight"):
        build("redis://127.0.0.1:1/0", api_key="k", max_in_flight=0, requests_per_second=None)
    with pytest.raises(ValueError, match="requests_per_second"):
        build("redis://127.0.0.1:1/0", api_key="k", max_in_flight=1, requests_per_second=0)
