"""RedisJournal against a real redis-server: records, outstanding, ownership epochs, failures."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from runninghub_async._journal import JournalEntry
from runninghub_async.redis import (
    CoordinationUnavailableError,
    JournalOwnershipError,
    RedisJournal,
)

from .redis_support import RedisServer, free_port

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
