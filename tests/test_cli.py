"""The command line against a fake RunningHub: demo, generate, batch (failures, resume, Ctrl-C),
status, account and bad arguments.

``main`` runs its own event loop, so these tests are sync.  The fake they talk to
runs in a background thread with its own loop (an anyio blocking portal), so it
outlives each command, as RunningHub does, and a re-run can attach to its tasks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest

from runninghub_async import RunningHub
from runninghub_async._cli import main
from runninghub_async._cli._batch import FAILURES_NAME, JOURNAL_NAME
from runninghub_async._cli._inputs import RequestBuilder
from runninghub_async._journal import FileJournal, params_digest
from runninghub_async.testing import FakeRunningHub, FakeStats, FakeTask, Fault
from runninghub_async.testing._png import render_png

KEY = "sk-cli-test-secret"
FAST = ["--time-scale", "0.01"]  # the client's poll cadence, 100x faster than by default
T2I = "rhart-image-n-pro/text-to-image"


class Server:
    """A fake RunningHub running in a background thread, driven from the test's thread."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, fake: FakeRunningHub) -> None:
        self._portal = portal
        self._fake = fake
        self._watchers: list[Future[None]] = []
        self.base_url = fake.base_url

    def close(self) -> None:
        """Stop the helpers running in the fake's loop."""
        for watcher in self._watchers:
            watcher.cancel()

    def stats(self) -> FakeStats:
        return self._portal.call(lambda: self._fake.stats)

    def tasks(self) -> dict[str, FakeTask]:
        return self._portal.call(lambda: dict(self._fake.tasks))

    def submit(self, params: dict[str, Any]) -> str:
        async def go() -> str:
            async with RunningHub(api_key=KEY, base_url=self.base_url) as client:
                return (await client.submit(T2I, params)).task_id

        return self._portal.call(go)

    def finish(self, task_id: str) -> None:
        self._portal.call(self._fake.finish, task_id)

    def wait_for(self, predicate: Callable[[FakeRunningHub], bool]) -> None:
        self._portal.call(lambda: self._fake.wait_for(predicate, timeout=10))

    def finish_all_later(self) -> None:
        """From now on, end every task with SUCCESS as soon as it exists (in the fake's loop)."""

        async def finisher() -> None:
            fake = self._fake
            while True:
                await fake.wait_for(
                    lambda f: any(not t.terminal for t in f.tasks.values()), timeout=None
                )
                for task in list(fake.tasks.values()):
                    if not task.terminal:
                        fake.finish(task.task_id)

        self._watchers.append(self._portal.start_task_soon(finisher))

    def fail_prompt(self, prompt: str) -> None:
        """Fail the task with *prompt* as soon as it is submitted (in the fake's loop)."""

        async def watch() -> None:
            fake = self._fake
            await fake.wait_for(lambda f: _by_prompt(f, prompt) is not None, timeout=None)
            task_id = _by_prompt(fake, prompt)
            assert task_id is not None
            fake.fail(task_id, "1015")

        self._watchers.append(self._portal.start_task_soon(watch))


def _by_prompt(fake: FakeRunningHub, prompt: str) -> str | None:
    return next((t.task_id for t in fake.tasks.values() if t.params.get("prompt") == prompt), None)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Server]]:
    """Start fakes in a background loop; the CLI finds the key in its environment."""
    monkeypatch.setenv("RUNNINGHUB_API_KEY", KEY)
    monkeypatch.delenv("RUNNINGHUB_BASE_URL", raising=False)
    with contextlib.ExitStack() as stack:
        portal = stack.enter_context(anyio.from_thread.start_blocking_portal())

        def start(**options: Any) -> Server:
            options.setdefault("duration", 0.02)
            fake = FakeRunningHub(api_keys=(KEY,), **options)
            server = Server(portal, stack.enter_context(portal.wrap_async_context_manager(fake)))
            stack.callback(server.close)
            return server

        yield start


@pytest.fixture
def server(serve: Callable[..., Server]) -> Server:
    """A fake whose tasks take 20 ms."""
    return serve()


def run(server: Server, *argv: str) -> int:
    return main([*argv, "--base-url", server.base_url, *FAST])


def write_lines(path: Path, lines: list[Any]) -> Path:
    text = "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def pngs(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.png"))


# -- demo -------------------------------------------------------------------------------


def test_demo_runs_small_n_on_the_fake_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """demo -n 10 (without a key) generates and downloads 10 images and prints every summary row."""
    monkeypatch.delenv("RUNNINGHUB_API_KEY", raising=False)
    out = tmp_path / "demo"
    assert main(["demo", "-n", "10", "-o", str(out), "--time-scale", "0.05"]) == 0
    assert len(pngs(out)) == 10
    text = capsys.readouterr().out
    assert "done 10/10 failed 0" in text
    for row in (
        "10 (10 done, 0 failed)",
        "wall time",
        "query requests sent",
        "per job",
        "job latency p50 / p95",
        "concurrency rejections absorbed",
        "files written                    10",
    ):
        assert row in text


def test_demo_refuses_to_spend_money_without_fake_or_real(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a key set, demo needs --fake (or --real) and says so, exit 2, before any call."""
    monkeypatch.setenv("RUNNINGHUB_API_KEY", KEY)
    assert main(["demo", "-n", "3", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--fake" in err
    assert "--real" in err
    assert KEY not in err


# -- generate ------------------------------------------------------------------------------


def test_generate_prints_the_task_id_and_downloads_the_image(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """generate prints "task <id>" first, then downloads <id>_0.png."""
    code = run(server, "generate", "a red fox", "-o", str(tmp_path), "--aspect-ratio", "16:9")
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    task_id = lines[0].split()[1]
    assert lines[0] == f"task {task_id} submitted to {T2I}"
    assert pngs(tmp_path) == [f"{task_id}_0.png"]
    params = server.tasks()[task_id].params
    assert params == {"prompt": "a red fox", "aspectRatio": "16:9", "resolution": "1k"}


def test_generate_with_a_local_image_uploads_it_and_edits(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--image with a local file uploads it first and submits an edit with its URL."""
    image = tmp_path / "in.png"
    image.write_bytes(render_png("input"))
    out = tmp_path / "out"
    assert run(server, "generate", "make it blue", "-o", str(out), "--image", str(image)) == 0
    task_id = capsys.readouterr().out.split()[1]
    task = server.tasks()[task_id]
    assert task.endpoint == "rhart-image-n-pro/edit"
    assert server.stats().uploads == 1
    assert pngs(out) == [f"{task_id}_0.png"]


def test_generate_reports_a_failed_task_in_one_line(
    serve: Callable[..., Server], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task that fails on RunningHub is one error line on stderr and exit 1."""
    server = serve(failure_rate=1.0, failure_codes=("1015",))
    assert run(server, "generate", "doomed", "-o", str(tmp_path)) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("error: task ")
    assert "1015" in captured.err


# -- batch -----------------------------------------------------------------------------------


def test_batch_with_failures_then_a_rerun_submits_nothing_twice(
    serve: Callable[..., Server], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Failed items go to failures.jsonl with exit 1; the re-run sends nothing again."""
    server = serve()
    server.fail_prompt("doomed")
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            {"prompt": "one"},
            {"prompt": "doomed"},
            {"prompt": "two", "aspectRatio": "7:3"},  # refused locally: never sent
            {"prompt": "three", "model": "nano-banana2"},
        ],
    )
    out = tmp_path / "out"
    assert run(server, "batch", str(source), "-o", str(out)) == 1
    first = capsys.readouterr().out
    assert "2 items failed" in first
    failures = [json.loads(line) for line in (out / FAILURES_NAME).read_text().splitlines()]
    assert [(f["index"], f["error_type"]) for f in failures] == [
        (1, "TaskFailedError"),
        (2, "InvalidParametersError"),
    ]
    assert failures[0]["task_id"] in server.tasks()
    assert failures[0]["params"]["prompt"] == "doomed"
    assert "aspectRatio" in failures[1]["error"]
    assert len(pngs(out)) == 2
    assert server.tasks()[pngs(out)[1].split("_")[0]].endpoint.startswith("rhart-image-n-g31")
    before = server.stats()
    assert before.accepted_tasks == 3

    assert run(server, "batch", str(source), "-o", str(out)) == 1
    again = capsys.readouterr().out
    after = server.stats()
    assert after.submit_requests == before.submit_requests  # nothing sent, not even the failure
    assert after.accepted_tasks == 3
    assert "2 skipped as already done" in again
    assert "--retry-failed" in again
    assert len(pngs(out)) == 2


def test_batch_attaches_to_a_task_journaled_before_a_crash(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A journal whose last word on an item is its task id makes the re-run attach, not submit."""
    source = write_lines(tmp_path / "prompts.txt", ["a lighthouse", "", "a koi pond"])
    item = RequestBuilder().item(0, 1, {"prompt": "a lighthouse"})
    task_id = server.submit(dict(item.params))  # what the crashed run had submitted
    out = tmp_path / "out"
    out.mkdir()

    async def crashed_run() -> None:
        async with FileJournal(out / JOURNAL_NAME) as journal:
            await journal.intent(item.key, item.endpoint, params_digest(item.params))
            await journal.accepted(item.key, task_id)

    anyio.run(crashed_run)
    assert run(server, "batch", str(source), "-o", str(out)) == 0
    text = capsys.readouterr().out
    assert "1 to re-attach" in text
    assert "1 submitted, 1 re-attached from an earlier run" in text
    stats = server.stats()
    assert stats.accepted_tasks == 2  # the one above, and "a koi pond"
    assert stats.submit_requests == 2
    assert f"{task_id}_0.png" in pngs(out)
    assert len(pngs(out)) == 2
    assert not (out / FAILURES_NAME).exists()


def test_batch_does_not_resend_a_submit_whose_outcome_is_unknown(
    serve: Callable[..., Server], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A submit that got no answer is reported, not resent, until --resubmit-unknown."""
    server = serve(faults=[Fault("drop_after_accept", route="submit", times=1)])
    source = write_lines(tmp_path / "prompts.txt", ["only one"])
    out = tmp_path / "out"
    assert run(server, "batch", str(source), "-o", str(out)) == 1
    assert server.stats().accepted_tasks == 1  # accepted, but the answer was lost
    assert "SubmitOutcomeUnknownError" in (out / FAILURES_NAME).read_text()
    capsys.readouterr()

    assert run(server, "batch", str(source), "-o", str(out)) == 1
    assert "--resubmit-unknown" in capsys.readouterr().out
    assert server.stats().submit_requests == 1

    assert run(server, "batch", str(source), "-o", str(out), "--resubmit-unknown") == 0
    assert server.stats().accepted_tasks == 2
    assert len(pngs(out)) == 1
    assert not (out / FAILURES_NAME).exists()


def test_batch_ctrl_c_stops_cleanly_and_the_rerun_resumes(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    """SIGINT mid-batch exits 130 saying how to resume; the re-run attaches and submits nothing."""
    server = serve(duration=None)  # tasks end only when the test says so
    source = write_lines(tmp_path / "prompts.txt", ["one", "two", "three"])
    out = tmp_path / "out"
    env = {**os.environ, "RUNNINGHUB_API_KEY": KEY}
    command = [sys.executable, "-m", "runninghub_async", "batch", str(source), "-o", str(out)]
    command += ["--base-url", server.base_url, *FAST]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # The signal may land while answers are still on their way back: the
        # submits under way must still journal their task ids.
        server.wait_for(lambda fake: fake.stats.accepted_tasks == 3)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert stderr.strip() == (
        "interrupted; re-run the same command to resume "
        "(3 tasks already submitted will be re-attached)"
    )
    assert "Traceback" not in stdout + stderr
    for task_id in server.tasks():
        server.finish(task_id)
    assert run(server, "batch", str(source), "-o", str(out)) == 0
    assert server.stats().submit_requests == 3
    assert len(pngs(out)) == 3


# -- status and account ----------------------------------------------------------------------


def test_status_prints_a_finished_task(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """status shows the task's status, its output URL and its cost."""
    task_id = server.submit({"prompt": "a tram", "resolution": "1k"})
    server.wait_for(lambda fake: fake.tasks[task_id].terminal)
    assert run(server, "status", task_id) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"task {task_id}: SUCCESS\n")
    assert "output 0: http://127.0.0.1:" in text
    assert "cost " in text


def test_status_of_an_unknown_task_is_one_error_line(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown task id: exit 1, "error: ..." on one line, no traceback, no key."""
    assert run(server, "status", "1234567890123456789") == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ")
    assert captured.err.count("\n") == 1
    assert KEY not in captured.out + captured.err


def test_account_prints_balance_and_concurrency(
    serve: Callable[..., Server], capsys: pytest.CaptureFixture[str]
) -> None:
    """account shows the balance and the key's concurrency limit."""
    server = serve(concurrency_limit=7, remain_money="12.50", currency="USD")
    assert run(server, "account") == 0
    text = capsys.readouterr().out
    assert "12.50 USD" in text
    assert "concurrency limit  7" in text
    assert KEY not in text


# -- errors and bad arguments -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["generate", "x"], "-o/--output"),
        (["generate", "x", "-o", "d", "--model", "nope"], "nano-banana2-lite"),
        (["generate", "x", "-o", "d", "--aspect-ratio", "7:3"], "allowed: 1:1, 16:9"),
        (
            ["generate", "x", "-o", "d", "--model", "nano-banana2-lite", "--resolution", "2k"],
            "has no resolution",
        ),
        (["generate", "x", "-o", "d", "--image", "missing.png"], "no such file"),
        (["batch", "f", "-o", "d", "--max-in-flight", "0"], 'or "auto"'),
        (["batch", "f", "-o", "d", "--rps", "-1"], "number > 0"),
        (["status", "abc"], "all digits"),
        (["frobnicate"], "invalid choice"),
        (["status", "1", "--fake", "--base-url", "http://x"], "not allowed with"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) else None,
)
def test_bad_arguments_exit_2_and_say_what_is_allowed(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad arguments exit 2 with a message that names what is allowed."""
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_without_a_key_commands_other_than_demo_say_how_to_get_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No RUNNINGHUB_API_KEY and no --fake: one error line naming both, exit 1."""
    monkeypatch.delenv("RUNNINGHUB_API_KEY", raising=False)
    assert main(["account"]) == 1
    err = capsys.readouterr().err
    assert (
        err
        == "error: no API key: set RUNNINGHUB_API_KEY (or pass --fake to use the embedded fake)\n"
    )


def test_an_unreadable_batch_file_is_one_error_line(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing batch file: exit 1, one line naming it, and no request sent."""
    assert run(server, "batch", str(tmp_path / "missing.txt"), "-o", str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "missing.txt" in err
    assert server.stats().requests_total == 0


def test_fake_flag_uses_the_embedded_fake_even_with_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--fake never calls the configured API: account answers from the embedded fake."""
    monkeypatch.setenv("RUNNINGHUB_API_KEY", KEY)
    monkeypatch.setenv("RUNNINGHUB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    assert main(["account", "--fake"]) == 0
    assert "concurrency limit  20" in capsys.readouterr().out


def test_progress_falls_back_to_plain_lines_without_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal but without the cli extra, the display is the plain one, not a crash."""
    from runninghub_async._cli import _progress

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setitem(sys.modules, "rich.console", None)
    assert _progress.rich_console() is None
    display = _progress.make_display(_progress.Tracker(3), label="x", console=None)
    assert isinstance(display, _progress.PlainDisplay)


def test_rich_display_renders_the_counts() -> None:
    """The rich display shows the same counts as the plain line."""
    import io

    from rich.console import Console

    from runninghub_async._cli._progress import RichDisplay, Tracker

    buffer = io.StringIO()
    tracker = Tracker(4)
    display = RichDisplay(tracker, label="batch", console=Console(file=buffer, width=120))
    display.start()
    tracker.start()
    tracker.finish(ok=True)
    display.note("a note")
    display.stop()
    text = buffer.getvalue()
    assert "1/4" in text
    assert "failed 0 running 0 queued 3" in text
    assert "a note" in text


def test_a_forced_stop_of_submits_waiting_for_a_slot_leaves_nothing_unknown(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    """Two Ctrl-Cs while submits wait for a slot: they are journaled as never sent and resent."""
    server = serve(duration=None, concurrency_limit=1)
    source = write_lines(tmp_path / "prompts.txt", ["one", "two", "three"])
    out = tmp_path / "out"
    env = {**os.environ, "RUNNINGHUB_API_KEY": KEY}
    command = [sys.executable, "-m", "runninghub_async", "batch", str(source), "-o", str(out)]
    command += ["--base-url", server.base_url, "--max-in-flight", "3", *FAST]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # One task runs; the others were refused (421) and now wait for its slot.
        server.wait_for(lambda fake: fake.stats.rejections.get("421", 0) >= 2)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert "stopping: waiting up to 10s for 2 submit(s)" in stdout
    assert "(1 task already submitted will be re-attached)" in stderr
    assert server.stats().accepted_tasks == 1
    for task_id in server.tasks():
        server.finish(task_id)
    server.finish_all_later()
    assert run(server, "batch", str(source), "-o", str(out)) == 0
    assert server.stats().accepted_tasks == 3
    assert len(pngs(out)) == 3
