"""The limiter's two queues: FIFO, cancel-safe, and the token bucket's bound."""

from __future__ import annotations

import anyio
import pytest

from runninghub_async._limiter import SlotWindow, TokenBucket

pytestmark = pytest.mark.anyio


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_slots_are_granted_in_arrival_order() -> None:
    """Waiters get slots first come, first served."""
    slots = SlotWindow(1)
    held = await slots.acquire()
    order: list[int] = []

    async def take(i: int) -> None:
        slot = await slots.acquire()
        order.append(i)
        slot.release()

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(take, i)
            await anyio.wait_all_tasks_blocked()
        held.release()
    assert order == [0, 1, 2, 3, 4]


async def test_front_of_queue_for_put_back_jobs() -> None:
    """A job put back after a rejection goes before everyone waiting."""
    slots = SlotWindow(1)
    held = await slots.acquire()
    order: list[str] = []

    async def take(name: str, front: bool) -> None:
        slot = await slots.acquire(front=front)
        order.append(name)
        slot.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, "late", False)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(take, "retry", True)
        await anyio.wait_all_tasks_blocked()
        held.release()
    assert order == ["retry", "late"]


async def test_cancelled_waiter_gives_its_place_back() -> None:
    """A cancelled waiter leaves the queue; the slot goes to the next one."""
    slots = SlotWindow(1)
    held = await slots.acquire()
    got: list[str] = []
    async with anyio.create_task_group() as tg:
        scope = anyio.CancelScope()

        async def doomed() -> None:
            with scope:
                await slots.acquire()
                got.append("doomed")

        async def patient() -> None:
            await slots.acquire()
            got.append("patient")

        tg.start_soon(doomed)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(patient)
        await anyio.wait_all_tasks_blocked()
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        held.release()
    assert got == ["patient"]
    assert slots.in_use == 1
    assert slots.waiting == 0


async def test_window_shrinks_on_rejection_and_grows_back() -> None:
    """421 shrinks the window to what others hold; accepted submits grow it to the limit."""
    slots = SlotWindow(10)
    for _ in range(6):
        await slots.acquire()
    slots.rejected()  # the sixth was refused: five are held by accepted jobs
    assert slots.capacity == 5
    for _ in range(40):
        slots.accepted()
    assert slots.capacity == 10


def test_bad_limits_are_refused() -> None:
    """Nonsense sizes fail at construction, not by hanging later."""
    with pytest.raises(ValueError, match="max_in_flight"):
        SlotWindow(0)
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0)


def test_token_bucket_bounds_every_second() -> None:
    """No one-second window sees more than 1.25 x rate calls (burst is a quarter second)."""
    clock = FakeClock()
    bucket = TokenBucket(20, clock=clock)
    stamps: list[float] = []
    for _ in range(200):
        while True:
            try:
                bucket.acquire_nowait()
                break
            except anyio.WouldBlock:
                clock.now += 0.001  # time passes only while blocked
        stamps.append(clock.now)
    for i, start in enumerate(stamps):
        inside = sum(1 for t in stamps[i:] if t < start + 1.0)
        assert inside <= 20 * 1.25
    assert stamps[-1] >= (200 - 5) / 20 - 0.01


async def test_token_bucket_is_fifo_and_cancel_safe() -> None:
    """Callers are served in order; a cancelled one does not block the rest."""
    bucket = TokenBucket(100, burst=1)
    await bucket.acquire()
    order: list[int] = []
    async with anyio.create_task_group() as tg:
        scopes = []
        for i in range(4):
            scope = anyio.CancelScope()
            scopes.append(scope)

            async def take(i: int = i, scope: anyio.CancelScope = scope) -> None:
                with scope:
                    await bucket.acquire()
                    order.append(i)

            tg.start_soon(take)
            await anyio.wait_all_tasks_blocked()
        scopes[1].cancel()
    assert order == [0, 2, 3]
    assert bucket.waiting == 0


async def test_a_slot_is_released_once_however_often_release_is_called() -> None:
    """Whoever ends a job releases its slot; a second release changes nothing."""
    slots = SlotWindow(2)
    first = await slots.acquire()
    await slots.acquire()
    first.release()
    first.release()
    assert slots.in_use == 1


def test_throttle_halves_the_rate_pauses_and_recovers() -> None:
    """A 1003/429 halves the rate and pauses calls; quiet time brings the rate back."""
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock)
    bucket.acquire_nowait()
    bucket.throttle(retry_after=2.0)
    assert bucket.current_rate == 5
    with pytest.raises(anyio.WouldBlock):
        bucket.acquire_nowait()
    clock.now += 1.9
    with pytest.raises(anyio.WouldBlock):
        bucket.acquire_nowait()  # still inside Retry-After
    clock.now += 0.2
    bucket.acquire_nowait()
    clock.now += 60.0
    bucket.acquire_nowait()
    assert bucket.current_rate == 10
