"""RedisJournal against a real redis-server: records, outstanding, ownership epochs, failures."""

from __future__ import annotations

import logging
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio
from anyio.streams.buffered import BufferedByteReceiveStream

from runninghub_async._journal import JournalEntry
from runninghub_async.redis import (
    CoordinationUnavailableError,
    JournalOwnershipError,
    RedisJournal,
)

from .redis_support import RedisServer, free_port, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def namespace() -> str:
    """A journal of this test alone."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
async def journal(redis_server: RedisServer, namespace: str) -> AsyncIterator[RedisJournal]:
    """Worker A's journal."""
    async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="A") as opened:
        yield opened


async def test_records_and_outstanding(journal: RedisJournal) -> None:
    """Intent, accepted and ended are read back; outstanding lists what has no end."""
    before = time.time()
    await journal.intent("a", "model/x", "d1")
    await journal.accepted("a", "task-a")
    await journal.intent("b", "app:1", "d2")
    await journal.intent("c", "model/x", "d3")
    await journal.accepted("c", "task-c")
    await journal.ended("c", "SUCCESS")
    a = await journal.get("a")
    assert a == JournalEntry("a", "model/x", "d1", "task-a", None, a.updated_at if a else 0)
    assert a is not None
    assert a.updated_at >= before - 1
    c = await journal.get("c")
    assert c is not None
    assert c.status == "SUCCESS"
    assert await journal.get("none") is None
    assert {(e.key, e.task_id) for e in await journal.outstanding()} == {
        ("a", "task-a"),
        ("b", None),
    }


async def test_a_resend_starts_a_new_attempt(journal: RedisJournal) -> None:
    """An intent after an end forgets the earlier task and end, and is outstanding again."""
    await journal.intent("k", "e", "d")
    await journal.accepted("k", "t1")
    await journal.ended("k", "FAILED")
    assert await journal.outstanding() == []
    await journal.intent("k", "e", "d")
    entry = await journal.get("k")
    assert entry is not None
    assert (entry.task_id, entry.status) == (None, None)
    assert [e.key for e in await journal.outstanding()] == ["k"]


async def test_a_worker_that_lost_an_item_cannot_submit_it(
    redis_server: RedisServer,
    namespace: str,
    journal: RedisJournal,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """B claims A's item: A's next intent raises (so A must not POST), and A's end is dropped."""
    await journal.intent("item", "model/x", "d")
    async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="B") as b:
        # B may not record an intent for an item A owns without claiming it.
        with pytest.raises(JournalOwnershipError):
            await b.intent("item", "model/x", "d")
        assert await b.claim("item") == 2
        with pytest.raises(JournalOwnershipError) as raised:
            await journal.intent("item", "model/x", "d")
        assert (raised.value.key, raised.value.owner, raised.value.epoch) == ("item", "B", 2)
        await b.intent("item", "model/x", "d")
        await b.accepted("item", "task-b")
        with caplog.at_level(logging.WARNING, logger="runninghub_async"):
            await journal.ended("item", "FAILED")  # stale: dropped
            await journal.accepted("item", "task-a")  # a task id is known: dropped
        assert "owned by another writer" in caplog.text
        entry = await b.get("item")
        assert entry is not None
        assert (entry.task_id, entry.status) == ("task-b", None)
        await b.ended("item", "SUCCESS")
        entry = await journal.get("item")
        assert entry is not None
        assert entry.status == "SUCCESS"


async def test_a_lost_task_id_is_still_kept(
    redis_server: RedisServer, namespace: str, journal: RedisJournal
) -> None:
    """A stale writer's task id is recorded when none is known: a paid task is never forgotten."""
    await journal.intent("item", "model/x", "d")
    async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="B") as b:
        await b.claim("item")
        await journal.accepted("item", "task-a")  # A's POST was already on the wire
        entry = await b.get("item")
        assert entry is not None
        assert entry.task_id == "task-a"


async def test_a_restarted_worker_with_a_stable_name_carries_on(
    redis_server: RedisServer, namespace: str, journal: RedisJournal
) -> None:
    """The same owner name in a new process may end and resend its own items."""
    await journal.intent("item", "model/x", "d")
    await journal.accepted("item", "task-a")
    async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="A") as again:
        (entry,) = await again.outstanding()
        assert entry.task_id == "task-a"
        await again.ended("item", "SUCCESS")
        assert await again.outstanding() == []


async def test_unreachable(namespace: str) -> None:
    """No Redis: every call fails with the named error within the bound, so nothing is POSTed."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with RedisJournal.from_url(
        url, namespace=namespace, unavailable_timeout=0.3, socket_timeout=0.2
    ) as journal:
        start = time.monotonic()
        with pytest.raises(CoordinationUnavailableError):
            await journal.intent("a", "e", "d")
        assert time.monotonic() - start < 2
        with pytest.raises(CoordinationUnavailableError):
            await journal.outstanding()


async def test_restart_empty_loses_the_journal(
    own_redis_server: RedisServer, namespace: str
) -> None:
    """Without persistence a restart forgets every record (hence: run Redis with AOF)."""
    async with RedisJournal.from_url(own_redis_server.url, namespace=namespace) as journal:
        await journal.intent("a", "e", "d")
        await journal.accepted("a", "t")
        own_redis_server.restart()
        assert await journal.outstanding() == []
        await journal.intent("b", "e", "d")  # and it works again at once
        assert [e.key for e in await journal.outstanding()] == ["b"]


async def test_a_live_writers_items_are_not_anyone_elses(
    redis_server: RedisServer, namespace: str
) -> None:
    """While A's journal is open, B neither lists nor takes A's items; once A closed, B does."""
    async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="A") as a:
        await a.intent("item", "model/x", "d")
        await a.accepted("item", "task-a")
        await a.intent("sending", "model/x", "d")  # its POST on the wire: not "unknown" to B
        async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="B") as b:
            assert await b.outstanding() == []
            every = await b.outstanding(include_live=True)
            assert [e.key for e in every] == ["item", "sending"]
            assert await b.claim_abandoned("item") is None
            await a.ended("item", "SUCCESS")  # still A's
            await a.accepted("sending", "task-s")
    async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="B") as b:
        assert [(e.key, e.task_id) for e in await b.outstanding()] == [("sending", "task-s")]
        assert await b.claim_abandoned("sending") == 2
        assert await b.claim_abandoned("item") is None  # ended: nothing to take over


async def test_a_writers_own_items_stay_its_own(redis_server: RedisServer, namespace: str) -> None:
    """A stable name takes its own items back at once, even while its old lease runs."""
    async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="A") as a:
        await a.intent("item", "model/x", "d")
        await a.accepted("item", "task-a")
        async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="A") as again:
            assert [e.key for e in await again.outstanding()] == ["item"]
            assert await again.claim_abandoned("item") == 2


async def test_two_recovering_workers_take_an_item_once(
    redis_server: RedisServer, namespace: str
) -> None:
    """B and C both find a closed writer's item: exactly one of them takes it."""
    async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="A") as a:
        await a.intent("item", "model/x", "d")
        await a.accepted("item", "task-a")
    taken: dict[str, int | None] = {}
    async with (
        RedisJournal.from_url(redis_server.url, namespace=namespace, owner="B") as b,
        RedisJournal.from_url(redis_server.url, namespace=namespace, owner="C") as c,
    ):

        async def take(journal: RedisJournal) -> None:
            taken[journal.owner] = await journal.claim_abandoned("item")

        async with anyio.create_task_group() as tg:
            tg.start_soon(take, b)
            tg.start_soon(take, c)
        assert sorted(taken.values(), key=lambda v: v is None) == [2, None]
        winner = b if taken["B"] is not None else c
        await winner.ended("item", "SUCCESS")  # the taker owns it now
        entry = await b.get("item")
        assert entry is not None
        assert entry.status == "SUCCESS"


async def test_the_lease_is_renewed_while_open_and_removed_on_close(
    redis_server: RedisServer, namespace: str, redis_client: redis.asyncio.Redis
) -> None:
    """Put by the first write that owns something, renewed by the heartbeat, gone at close."""
    alive = f"rhj:{{{namespace}}}:alive:A"
    async with RedisJournal.from_url(
        redis_server.url, namespace=namespace, owner="A", lease=0.3
    ) as a:
        await a.intent("item", "model/x", "d")
        assert 0 < await redis_client.pttl(alive) <= 300

        # Renewed every 0.1 s, the lease's time left goes down and up again.
        async def left(more: bool) -> bool:
            ms = await redis_client.pttl(alive)
            return bool(ms > 250 if more else 0 < ms < 250)

        await until(lambda: left(more=False))
        await until(lambda: left(more=True))
    assert not await redis_client.exists(alive)


_DOOMED = textwrap.dedent(
    """
    import sys, anyio
    from runninghub_async.redis import RedisJournal

    async def main(url, namespace):
        async with RedisJournal.from_url(url, namespace=namespace, owner="doomed", lease=0.5) as j:
            await j.intent("item", "model/x", "d")
            await j.accepted("item", "task-doomed")
            print("ready", flush=True)
            await anyio.sleep_forever()

    anyio.run(main, *sys.argv[1:])
    """
)


async def test_a_killed_writers_items_are_taken_over_after_its_lease(
    redis_server: RedisServer, namespace: str
) -> None:
    """SIGKILL leaves no goodbye: the items are the dead writer's until its lease lapses."""
    command = [sys.executable, "-c", _DOOMED, redis_server.url, namespace]
    process = await anyio.open_process(command)
    try:
        async with RedisJournal.from_url(redis_server.url, namespace=namespace, owner="B") as b:
            assert process.stdout is not None
            with anyio.fail_after(30):
                line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 99)
            assert line == b"ready"
            assert await b.outstanding() == []  # alive
            assert await b.claim_abandoned("item") is None
            process.kill()
            await process.wait()
            killed_at = time.monotonic()

            async def abandoned() -> bool:
                return bool(await b.outstanding())

            await until(abandoned)
            assert time.monotonic() - killed_at < 0.5 + 1.5  # the lease, and a margin for load
            (entry,) = await b.outstanding()
            assert entry.task_id == "task-doomed"
            assert await b.claim_abandoned("item") == 2
    finally:
        if process.returncode is None:
            process.kill()
        with anyio.CancelScope(shield=True):
            await process.aclose()


async def test_owning_needs_the_journal_open(redis_server: RedisServer, namespace: str) -> None:
    """Without a lease a writer's items would be anyone's: intent and claims need `async with`."""
    journal = RedisJournal.from_url(redis_server.url, namespace=namespace)
    try:
        with pytest.raises(RuntimeError, match="not open"):
            await journal.intent("a", "e", "d")
        with pytest.raises(RuntimeError, match="not open"):
            await journal.claim_abandoned("a")
        with pytest.raises(ValueError, match="lease"):
            RedisJournal.from_url(redis_server.url, namespace=namespace, lease=0)
    finally:
        async with journal:  # closes its client
            pass
