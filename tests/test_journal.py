"""The batch journal and what a re-run decides from it: durable records, torn lines, the lock,
item identity, and the plan for each item (submit, attach, skip, report)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from runninghub_async._cli import _journal
from runninghub_async._cli._engine import Action, list_outputs, plan
from runninghub_async._cli._inputs import Format, RequestBuilder, count_items, read_items
from runninghub_async._cli._journal import (
    FileJournal,
    ItemState,
    JournalEvent,
    JournalLockedError,
    MemoryJournal,
    Phase,
    decode,
    encode,
    fold,
)

TASK = "2001234567890123456"


def event(phase: Phase, key: str = "0-abc", **fields: object) -> JournalEvent:
    return JournalEvent(key=key, index=0, phase=phase, **fields)  # type: ignore[arg-type]


def state_after(*events: JournalEvent) -> ItemState:
    state: ItemState | None = None
    for e in events:
        state = fold(state, e)
    assert state is not None
    return state


# -- folding events into states -------------------------------------------------------------


def test_an_item_goes_intent_submitted_done() -> None:
    """The task id of "submitted" survives into "done", which adds the files."""
    state = state_after(
        event(Phase.INTENT),
        event(Phase.SUBMITTED, task_id=TASK),
        event(Phase.DONE, files=(f"{TASK}_0.png",)),
    )
    assert (state.phase, state.task_id, state.files) == (Phase.DONE, TASK, (f"{TASK}_0.png",))
    assert not state.resumable
    assert not state.outcome_unknown


def test_a_new_intent_forgets_the_task_of_an_earlier_attempt() -> None:
    """Retrying a failed item starts from scratch: its old task id is not re-attached."""
    state = state_after(
        event(Phase.INTENT),
        event(Phase.SUBMITTED, task_id=TASK),
        event(Phase.FAILED, error_type="TaskFailedError", error="boom"),
        event(Phase.INTENT),
    )
    assert state.task_id is None
    assert state.phase is Phase.INTENT


@pytest.mark.parametrize(
    ("events", "unknown", "final", "resumable"),
    [
        ([event(Phase.INTENT)], True, False, False),
        (
            [event(Phase.INTENT), event(Phase.FAILED, error_type="SubmitOutcomeUnknownError")],
            True,
            False,
            False,
        ),
        (
            [event(Phase.INTENT), event(Phase.FAILED, error_type="InvalidParametersError")],
            False,
            False,
            False,
        ),
        ([event(Phase.INTENT), event(Phase.SUBMITTED, task_id=TASK)], False, False, True),
        (
            [
                event(Phase.INTENT),
                event(Phase.SUBMITTED, task_id=TASK),
                event(Phase.FAILED, error_type="TaskFailedError"),
            ],
            False,
            True,
            False,
        ),
        (
            [
                event(Phase.INTENT),
                event(Phase.SUBMITTED, task_id=TASK),
                event(Phase.FAILED, error_type="JobTimeoutError"),
            ],
            False,
            False,
            True,
        ),
    ],
    ids=["intent", "unknown", "refused", "submitted", "task-failed", "timed-out"],
)
def test_state_classification(
    events: list[JournalEvent], unknown: bool, final: bool, resumable: bool
) -> None:
    """Unknown outcome, final failure and resumable follow from the last events."""
    state = state_after(*events)
    assert (state.outcome_unknown, state.final_failure, state.resumable) == (
        unknown,
        final,
        resumable,
    )


# -- what a re-run does with each item ---------------------------------------------------------


def test_plan_for_each_kind_of_item() -> None:
    """Never resubmit what has a task id or an unknown outcome unless asked; skip finished work."""
    submitted = state_after(event(Phase.INTENT), event(Phase.SUBMITTED, task_id=TASK))
    done = state_after(
        event(Phase.INTENT),
        event(Phase.SUBMITTED, task_id=TASK),
        event(Phase.DONE, files=(f"{TASK}_0.png",)),
    )
    unknown = state_after(event(Phase.INTENT))
    refused = state_after(
        event(Phase.INTENT), event(Phase.FAILED, error_type="InvalidParametersError")
    )
    failed = state_after(
        event(Phase.INTENT),
        event(Phase.SUBMITTED, task_id=TASK),
        event(Phase.FAILED, error_type="TaskFailedError"),
    )
    files = {TASK: (f"{TASK}_0.png",)}
    assert plan(None, {}) is Action.SUBMIT
    assert plan(submitted, {}) is Action.ATTACH
    assert plan(submitted, files) is Action.SKIP  # downloaded, then the crash
    assert plan(done, files) is Action.SKIP
    assert plan(done, {}) is Action.ATTACH  # done, but the files were deleted
    assert plan(unknown, {}) is Action.REPORT
    assert plan(unknown, {}, resubmit_unknown=True) is Action.SUBMIT
    assert plan(refused, {}) is Action.SUBMIT  # never accepted: nothing was spent
    assert plan(failed, {}) is Action.REPORT
    assert plan(failed, {}, retry_failed=True) is Action.SUBMIT


def test_list_outputs_groups_files_by_task(tmp_path: Path) -> None:
    """Downloaded files, "-1" copies included, are found by task id; other files are ignored."""
    for name in (f"{TASK}_0.png", f"{TASK}_1-1.png", "99_0.jpg", "notes.txt", f"{TASK}_0.png.part"):
        (tmp_path / name).write_bytes(b"x")
    assert list_outputs(tmp_path) == {
        TASK: (f"{TASK}_0.png", f"{TASK}_1-1.png"),
        "99": ("99_0.jpg",),
    }
    assert list_outputs(tmp_path / "missing") == {}


# -- lines ------------------------------------------------------------------------------------


def test_encode_decode_round_trip() -> None:
    """Every field survives a line; the line ends with a newline."""
    original = event(
        Phase.FAILED, task_id=TASK, files=("a.png",), error_type="TaskFailedError", error="é"
    )
    line = encode(original)
    assert line.endswith("\n")
    decoded = decode(line)
    assert decoded is not None
    assert decoded == JournalEvent(
        key=original.key,
        index=0,
        phase=Phase.FAILED,
        task_id=TASK,
        files=("a.png",),
        error_type="TaskFailedError",
        error="é",
        at=round(original.at, 3),
    )


@pytest.mark.parametrize(
    "line",
    [
        '{"v": 1, "key": "0-a", "ind',
        "[]",
        '{"v": 2, "key": "k", "index": 0, "phase": "intent"}',
        '{"v": 1, "key": "k", "index": 0, "phase": "exploded"}',
    ],
    ids=["torn", "not-an-object", "future-version", "unknown-phase"],
)
def test_decode_refuses_what_is_not_an_event(line: str) -> None:
    """Torn, foreign or future lines decode to None instead of raising."""
    assert decode(line) is None


# -- the file -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_file_journal_survives_a_reopen(tmp_path: Path) -> None:
    """What was recorded is what a new process reads back."""
    path = tmp_path / "out" / "journal.jsonl"
    async with await FileJournal.open(path) as journal:
        await journal.record(event(Phase.INTENT))
        await journal.record(event(Phase.SUBMITTED, task_id=TASK))
        assert await journal.resumable() == 1
    async with await FileJournal.open(path) as journal:
        state = await journal.lookup("0-abc")
        assert state is not None
        assert state.task_id == TASK
        assert await journal.lookup("1-other") is None
        assert journal.unreadable == 0


@pytest.mark.anyio
async def test_a_torn_last_line_is_skipped_and_terminated(tmp_path: Path) -> None:
    """A line cut by a crash is skipped on reading, and the next record starts a line of its own."""
    path = tmp_path / "journal.jsonl"
    path.write_text(encode(event(Phase.INTENT)) + '{"v": 1, "key": "1-x", "inde')
    async with await FileJournal.open(path) as journal:
        assert journal.unreadable == 1
        await journal.record(event(Phase.SUBMITTED, task_id=TASK))
    lines = path.read_text().splitlines()
    assert [decode(line) is not None for line in lines] == [True, False, True]


@pytest.mark.anyio
async def test_two_processes_cannot_share_a_journal(tmp_path: Path) -> None:
    """A second open of the same journal fails with a clear error while the first holds it."""
    path = tmp_path / "journal.jsonl"
    async with await FileJournal.open(path):
        with pytest.raises(JournalLockedError, match="in use by another batch"):
            await FileJournal.open(path)
    async with await FileJournal.open(path):
        pass  # released on close


@pytest.mark.anyio
async def test_concurrent_records_are_all_durable_with_fewer_fsyncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 items recording at once: every line is on disk, written in groups."""
    writes: list[int] = []
    real_append = _journal._append_sync

    def counting_append(fd: int, text: str) -> None:
        writes.append(text.count("\n"))
        real_append(fd, text)

    monkeypatch.setattr(_journal, "_append_sync", counting_append)
    path = tmp_path / "journal.jsonl"
    async with await FileJournal.open(path) as journal, anyio.create_task_group() as tg:
        for n in range(100):
            tg.start_soon(journal.record, event(Phase.INTENT, key=f"{n}-k"))
    keys = {json.loads(line)["key"] for line in path.read_text().splitlines()}
    assert keys == {f"{n}-k" for n in range(100)}
    assert sum(writes) == 100
    assert len(writes) < 100


@pytest.mark.anyio
async def test_memory_journal_counts_what_a_rerun_would_attach() -> None:
    """The demo's journal answers like the file one."""
    journal = MemoryJournal()
    await journal.record(event(Phase.INTENT, key="a"))
    await journal.record(event(Phase.SUBMITTED, key="a", task_id=TASK))
    await journal.record(event(Phase.INTENT, key="b"))
    assert await journal.resumable() == 1
    state = await journal.lookup("b")
    assert state is not None
    assert state.outcome_unknown


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
