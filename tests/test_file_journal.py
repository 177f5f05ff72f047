"""The library's submit journal in a JSON-lines file: records, replay, torn lines, locking."""

from __future__ import annotations

import errno
import json
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from runninghub_async import JournalLockedError
from runninghub_async._journal import (
    FileJournal,
    JournalEntry,
    params_digest,
)

pytestmark = pytest.mark.anyio


def test_params_digest_is_canonical() -> None:
    """Key order and spacing do not change the digest; any value does; non-ASCII is kept."""
    a = params_digest({"prompt": "猫", "n": 1, "nested": {"b": 2, "a": 1}})
    b = params_digest({"nested": {"a": 1, "b": 2}, "n": 1, "prompt": "猫"})
    assert a == b
    assert len(a) == 64
    assert params_digest({"prompt": "猫", "n": 2, "nested": {"b": 2, "a": 1}}) != a


async def test_records_and_replays(tmp_path: Path) -> None:
    """What one process recorded is what the next one reads back, per key."""
    path = tmp_path / "deep" / "journal.jsonl"
    async with FileJournal(path) as journal:
        await journal.intent("a", "model/x", "d1")
        await journal.accepted("a", "task-a")
        await journal.intent("b", "model/x", "d2")
        await journal.intent("c", "app:7", "d3")
        await journal.accepted("c", "task-c")
        await journal.ended("c", "SUCCESS")
        assert (await journal.get("a")) is not None
    async with FileJournal(path) as journal:
        a = await journal.get("a")
        assert a is not None
        assert (a.endpoint, a.params_digest, a.task_id, a.status) == (
            "model/x",
            "d1",
            "task-a",
            None,
        )
        assert isinstance(a, JournalEntry)
        outstanding = await journal.outstanding()
        assert [(e.key, e.task_id) for e in outstanding] == [("a", "task-a"), ("b", None)]
        c = await journal.get("c")
        assert c is not None
        assert c.status == "SUCCESS"
        assert await journal.get("nope") is None
        assert journal.unreadable == 0


async def test_a_new_intent_starts_a_new_attempt(tmp_path: Path) -> None:
    """An intent after an end (the caller resends) forgets the earlier task and end."""
    path = tmp_path / "j.jsonl"
    async with FileJournal(path) as journal:
        await journal.intent("k", "e", "d")
        await journal.accepted("k", "t1")
        await journal.ended("k", "FAILED")
        await journal.intent("k", "e", "d")
    async with FileJournal(path) as journal:
        entry = await journal.get("k")
        assert entry is not None
        assert (entry.task_id, entry.status) == (None, None)


async def test_a_torn_last_line_is_ignored_and_terminated(tmp_path: Path) -> None:
    """A crash mid-write leaves half a line: replay skips it, and the next record is intact."""
    path = tmp_path / "j.jsonl"
    async with FileJournal(path, fsync=True) as journal:
        await journal.intent("a", "e", "d")
        await journal.accepted("a", "task-a")
    with path.open("a") as file:
        file.write('{"v":1,"event":"accepted","key":"b","task_')  # torn: no newline
    async with FileJournal(path) as journal:
        assert journal.unreadable == 1
        entry = await journal.get("a")
        assert entry is not None
        assert entry.task_id == "task-a"
        assert await journal.get("b") is None
        await journal.intent("c", "e", "d")
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["key"] == "c"
    async with FileJournal(path) as journal:
        assert journal.unreadable == 1
        assert [e.key for e in await journal.outstanding()] == ["a", "c"]


async def test_one_process_at_a_time(tmp_path: Path) -> None:
    """A second open of the same file fails instead of interleaving two writers."""
    path = tmp_path / "j.jsonl"
    async with FileJournal(path):
        with pytest.raises(JournalLockedError):
            async with FileJournal(path):
                pass
    async with FileJournal(path):
        pass


async def test_not_open() -> None:
    """Recording before entering is a clear error, not a silent loss."""
    journal = FileJournal("unused.jsonl")
    with pytest.raises(RuntimeError, match="not open"):
        await journal.intent("a", "e", "d")


async def test_lines_that_are_not_records_are_skipped(tmp_path: Path) -> None:
    """Foreign lines (nested too deep, null task id, a number no float holds) are counted and
    skipped like a torn line: the journal opens, keeps its records and takes new ones."""
    path = tmp_path / "j.jsonl"
    good = {"v": 1, "event": "intent", "key": "a", "endpoint": "e", "digest": "d"}
    foreign = [
        "[" * 200_000,  # deeper than the parser recurses
        '{"v":1,"event":"accepted","key":"a","task_id":null}',  # not the task "None"
        '{"v":1,"event":"accepted","key":"a","task_id":["t"]}',
        '{"v":1,"event":"intent","key":"b","endpoint":"e","digest":"d","at":' + "9" * 400 + "}",
        '{"v":1,"event":"intent","key":["c"],"endpoint":"e","digest":"d"}',
    ]
    path.write_text("\n".join([json.dumps(good), *foreign]) + "\n")
    async with FileJournal(path) as journal:
        assert journal.unreadable == len(foreign)
        assert [(e.key, e.task_id) for e in await journal.outstanding()] == [("a", None)]
        await journal.accepted("a", "task-a")
    async with FileJournal(path) as journal:
        entry = await journal.get("a")
        assert entry is not None
        assert entry.task_id == "task-a"


_FULL_DISK = textwrap.dedent(
    """
    import os, resource, signal, sys
    import anyio
    from runninghub_async import FileJournal

    async def main(path):
        async with FileJournal(path) as journal:
            await journal.intent("before", "e", "d")
            # The disk fills up: the file may grow by 10 bytes, not by a line.  (A real
            # limit on a real file, in a process of its own: it binds the whole process.)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 10, hard))
            try:
                await journal.intent("refused", "e", "d")
            except OSError as error:
                print("refused", error.errno)
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
            await journal.intent("after", "e", "d")
            await journal.accepted("after", "task-after")

    anyio.run(main, sys.argv[1])
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
async def test_a_record_that_could_not_be_written_is_not_written_later(tmp_path: Path) -> None:
    """A full disk refuses an intent (so nothing is sent): that intent must not reach the file
    when space comes back, nor half of it, or a re-run would report a submit that never was."""
    path = tmp_path / "j.jsonl"
    with anyio.fail_after(30):
        done = await anyio.run_process([sys.executable, "-c", _FULL_DISK, str(path)], check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == f"refused {errno.EFBIG}\n"
    lines = path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["before", "after", "after"]
    async with FileJournal(path) as journal:
        assert journal.unreadable == 0
        assert await journal.get("refused") is None
        pending = [(e.key, e.task_id) for e in await journal.outstanding()]
        assert pending == [("before", None), ("after", "task-after")]
