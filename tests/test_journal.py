"""What a batch re-run decides from the library journal (submit, attach, skip, report), the
journal the CLI opens late, and item identity and input reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from runninghub_async._cli._engine import Action, list_outputs, plan
from runninghub_async._cli._inputs import Format, RequestBuilder, count_items, read_items
from runninghub_async._cli._journal import LateJournal, resume_counts
from runninghub_async._journal import FileJournal, JournalEntry

TASK = "2001234567890123456"


def entry(task_id: str | None, status: str | None) -> JournalEntry:
    return JournalEntry("0-abc", "rhart-image-n-pro/text-to-image", "d", task_id, status, 1.0)


# -- what a re-run does with each item ---------------------------------------------------------


@pytest.mark.parametrize(
    ("known", "files", "options", "expected"),
    [
        (None, False, {}, Action.SUBMIT),
        (entry(TASK, None), False, {}, Action.ATTACH),
        (entry(TASK, None), True, {}, Action.SKIP),  # downloaded, then the crash
        (entry(TASK, "SUCCESS"), True, {}, Action.SKIP),
        (entry(TASK, "SUCCESS"), False, {}, Action.ATTACH),  # done, but the files are gone
        (entry(TASK, "TIMEOUT"), False, {}, Action.ATTACH),
        (entry(None, None), False, {}, Action.REPORT),  # an intent without an answer
        (entry(None, None), False, {"resubmit_unknown": True}, Action.SUBMIT),
        (entry(None, "REJECTED"), False, {}, Action.SUBMIT),  # never accepted: nothing spent
        (entry(TASK, "FAILED"), False, {}, Action.REPORT),
        (entry(TASK, "CANCEL"), False, {}, Action.REPORT),
        (entry(TASK, "FAILED"), False, {"retry_failed": True}, Action.SUBMIT),
    ],
    ids=[
        "new",
        "accepted",
        "accepted-files-there",
        "done",
        "done-files-gone",
        "timed-out",
        "unknown",
        "unknown-resubmit",
        "rejected",
        "failed",
        "cancelled",
        "failed-retry",
    ],
)
def test_plan_for_each_kind_of_item(
    known: JournalEntry | None, files: bool, options: dict[str, bool], expected: Action
) -> None:
    """Never resubmit what has a task id or an unknown outcome unless asked; skip finished work."""
    on_disk = {TASK: (f"{TASK}_0.png",)} if files else {}
    assert plan(known, on_disk, **options) is expected


def test_list_outputs_groups_files_by_task(tmp_path: Path) -> None:
    """Downloaded files, "-1" copies included, are found by task id; other files are ignored."""
    for name in (f"{TASK}_0.png", f"{TASK}_1-1.png", "99_0.jpg", "notes.txt", f"{TASK}_0.png.part"):
        (tmp_path / name).write_bytes(b"x")
    assert list_outputs(tmp_path) == {
        TASK: (f"{TASK}_0.png", f"{TASK}_1-1.png"),
        "99": ("99_0.jpg",),
    }
    assert list_outputs(tmp_path / "missing") == {}


# -- the journal the batch opens late ------------------------------------------------------------


@pytest.mark.anyio
async def test_late_journal_opens_the_file_only_when_asked(tmp_path: Path) -> None:
    """Entering the wrapper creates nothing; `open` does; calls before it are refused."""
    path = tmp_path / "out" / "journal.jsonl"
    async with LateJournal(FileJournal(path)) as late:
        assert not path.parent.exists()
        with pytest.raises(RuntimeError, match="not open"):
            await late.get("k")
        await late.open()
        assert await late.claim("k") is None  # a file journal is not shared
        await late.intent("k", "e", "d")
        await late.accepted("k", TASK)
        await late.intent("u", "e", "d")
        assert await resume_counts(late) == (1, 1)
    async with FileJournal(path) as journal:
        known = await journal.get("k")
        assert known is not None
        assert known.task_id == TASK


# -- item identity across runs ----------------------------------------------------------------


def test_an_item_key_is_its_index_and_its_request() -> None:
    """Same line, same key; another model or another position is another item."""
    builder = RequestBuilder()
    key = builder.item(0, 1, {"prompt": "a fox"}).key
    assert builder.item(0, 1, {"prompt": "a fox"}).key == key
    assert key.startswith("0-")
    assert builder.item(1, 2, {"prompt": "a fox"}).key != key
    assert RequestBuilder(model="nano-banana2").item(0, 1, {"prompt": "a fox"}).key != key
    assert builder.item(0, 1, {"prompt": "a fox", "model": "nano-banana2"}).key != key


def test_the_builder_fills_defaults_and_picks_the_endpoint() -> None:
    """A bare prompt gets the required resolution; imageUrls make an edit; "model" is not sent."""
    builder = RequestBuilder(aspect_ratio="16:9")
    plain = builder.item(0, 1, {"prompt": "x"})
    assert plain.endpoint == "rhart-image-n-pro/text-to-image"
    assert plain.params == {"prompt": "x", "aspectRatio": "16:9", "resolution": "1k"}
    edit = builder.item(
        1, 2, {"prompt": "x", "imageUrls": ["https://e.com/a.png"], "model": "nano-banana2"}
    )
    assert edit.endpoint == "rhart-image-n-g31-flash/image-to-image"
    assert "model" not in edit.params
    broken = builder.item(2, 3, {"prompt": "x", "model": "nope"})
    assert broken.problem is not None
    assert "known models" in broken.problem


@pytest.mark.anyio
async def test_items_are_read_lazily_with_their_line_numbers(tmp_path: Path) -> None:
    """Blank lines do not count as items but do count as lines; JSONL is detected by content."""
    path = tmp_path / "in.txt"
    path.write_text('{"prompt": "a"}\n\n{"prompt": "b"}\nnot json\n')
    count, fmt = await count_items(path)
    assert (count, fmt) == (3, Format.JSONL)
    items = [item async for item in read_items(path, fmt, RequestBuilder())]
    assert [(i.index, i.line, i.problem is None) for i in items] == [
        (0, 1, True),
        (1, 3, True),
        (2, 4, False),
    ]
