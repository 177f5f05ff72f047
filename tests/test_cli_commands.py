"""The command line's run, app, workflow, download and price commands; batch of any model
with --max-cost and its manifest; a bad key, a failed status and account, once each."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runninghub_async._cli import main
from runninghub_async._cli._batch import JOURNAL_NAME, MANIFEST_NAME
from runninghub_async._cli._progress import Tracker
from runninghub_async.testing._png import render_png

from .test_cli import KEY, Server, pngs, run, write_lines
from .test_cli import serve as serve  # a fixture
from .test_cli import server as server  # a fixture

T2I = "rhart-image-n-pro/text-to-image"
EDIT = "rhart-image-n-pro/edit"
WAN = "alibaba/wan-2.7/text-to-image"
APP = "1937084629516193794"
WORKFLOW = "1947598452328525826"  # image-to-image: LoadImage is node 10


def _task_id(out: str) -> str:
    first = out.splitlines()[0]
    assert first.startswith("task "), out
    return first.split()[1]


# -- run, app, workflow ------------------------------------------------------------------


def test_run_any_model_parses_params_as_json_and_prints_the_outputs(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """--param values are JSON when they parse (width=1024 is a number); no -o prints URLs."""
    argv = ["run", WAN, "--param", "prompt=a red fox", "--param", "width=1024"]
    assert run(server, *argv) == 0
    out = capsys.readouterr().out
    task_id = _task_id(out)
    assert f"submitted to {WAN}" in out
    assert "output 0: http://127.0.0.1:" in out
    assert server.tasks()[task_id].params == {"prompt": "a red fox", "width": 1024}


def test_run_with_a_local_image_uploads_it_and_downloads_the_result(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--image fills the model's image parameter; local files are uploaded first."""
    image = tmp_path / "in.png"
    image.write_bytes(render_png("in"))
    out = tmp_path / "out"
    argv = ["run", EDIT, "--param", "prompt=blue", "--image", str(image)]
    assert run(server, *argv, "-o", str(out)) == 0
    task_id = _task_id(capsys.readouterr().out)
    params = server.tasks()[task_id].params
    assert server.stats().uploads == 1
    assert params["resolution"] == "1k"  # the required default, filled in
    assert isinstance(params["imageUrls"], list)
    assert pngs(out) == [f"{task_id}_0.png"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run", T2I, "--param", "prompt=x", "--param", "resolution=9k"], "resolution"),
        (["run", T2I, "--param", "prompt=x", "--param", "aspect_ratio=1:1"], "aspectRatio"),
        (["run", "rhart-image-n-pr/text-to-image", "--param", "prompt=x"], "did you mean"),
        (["run", T2I, "--param", "novalue"], "NAME=VALUE"),
        (["run", T2I, "--param", "prompt=x", "--image", "a.png"], "takes no image"),
        (["run", EDIT, "--param", "prompt=x", "--image", "missing.png"], "no such file"),
        (["price", T2I, "--param", "resolution=1k"], "prompt is required"),
        (["app", APP, "--input", "12image=x"], "'<nodeId>.<fieldName>'"),
        (["app", APP, "--input", "12.image=@missing.png"], "no such file"),
        (["workflow", "abc", "--input", "6.text=x"], "not a RunningHub id"),
        (["batch", "f", "-o", "d", "--model", "nope/nothing"], "unknown model"),
        (["batch", "f", "-o", "d", "--max-cost", "-1"], "amount >= 0"),
    ],
    ids=lambda v: "-".join(v)[:40] if isinstance(v, list) else None,
)
def test_local_validation_errors_exit_2_before_any_request(
    server: Server, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    """Bad params, inputs or models exit 2 like other bad arguments; nothing is sent."""
    assert run(server, *argv) == 2
    assert expected in capsys.readouterr().err
    assert server.stats().requests_total == 0


def test_app_sends_inputs_and_uploads_at_files(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--input NODE.FIELD=VALUE; @PATH is uploaded and its fileName sent; @@ is a literal @."""
    image = tmp_path / "face.png"
    image.write_bytes(render_png("face"))
    argv = ["app", APP, "--input", "52.text=@@home", "--input", f"12.image=@{image}"]
    assert run(server, *argv) == 0
    task = server.tasks()[_task_id(capsys.readouterr().out)]
    assert task.endpoint == f"run/ai-app/{APP}"
    sent = {(e["nodeId"], e["fieldName"]): e["fieldValue"] for e in task.params["nodeInfoList"]}  # type: ignore[attr-defined]
    assert sent[("52", "text")] == "@home"
    assert sent[("12", "image")].startswith("openapi/")
    assert server.stats().uploads == 1


def test_workflow_downloads_its_files(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """workflow ID --input ... -o DIR writes the outputs."""
    out = tmp_path / "out"
    assert run(server, "workflow", WORKFLOW, "--input", "6.text=a fox", "-o", str(out)) == 0
    task_id = _task_id(capsys.readouterr().out)
    assert server.tasks()[task_id].endpoint == f"run/workflow/{WORKFLOW}"
    assert pngs(out) == [f"{task_id}_0.png"]


# -- download, price ----------------------------------------------------------------------


def test_download_saves_a_task_submitted_elsewhere(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """download TASK_ID waits for it if need be and writes its files."""
    task_id = server.submit({"prompt": "a tram", "resolution": "1k"})
    assert run(server, "download", task_id, "-o", str(tmp_path)) == 0
    assert pngs(tmp_path) == [f"{task_id}_0.png"]
    assert str(tmp_path / f"{task_id}_0.png") in capsys.readouterr().out


def test_price_prints_the_preview(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """price MODEL --param ... prints RunningHub's estimate; nothing is created."""
    argv = ["price", T2I, "--param", "prompt=x", "--param", "resolution=4k"]
    assert run(server, *argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"0.5 CNY per call of {T2I} (from RunningHub's price preview)")
    assert server.tasks() == {}


# -- batch ----------------------------------------------------------------------------------


def test_batch_of_any_model_writes_a_manifest(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--model takes any catalogued model; manifest.jsonl maps each line to its task and files."""
    source = write_lines(tmp_path / "in.jsonl", [{"prompt": "one"}, "", {"prompt": "two"}])
    out = tmp_path / "out"
    assert run(server, "batch", str(source), "-o", str(out), "--model", WAN) == 0
    text = capsys.readouterr().out
    assert "cost" in text
    manifest = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert [(m["index"], m["line"], m["status"]) for m in manifest] == [
        (0, 1, "done"),
        (1, 3, "done"),
    ]
    tasks = server.tasks()
    for record, prompt in zip(manifest, ["one", "two"], strict=True):
        assert tasks[record["task_id"]].params["prompt"] == prompt
        assert tasks[record["task_id"]].endpoint == WAN
        assert record["files"] == [f"{record['task_id']}_0.png"]


def test_batch_max_cost_stops_before_the_budget_and_a_rerun_continues(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """0.40 an item, --max-cost 1: two run, the rest are not_run; a larger budget finishes."""
    source = write_lines(tmp_path / "in.txt", ["a", "b", "c", "d"])
    out = tmp_path / "out"
    base = ["batch", str(source), "-o", str(out), "--max-in-flight", "1"]
    assert run(server, *base, "--max-cost", "1") == 1
    text = capsys.readouterr().out
    assert "would have passed --max-cost" in text
    assert "estimated 0.8 of --max-cost 1" in text
    assert server.stats().accepted_tasks == 2
    manifest = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert [m["status"] for m in manifest] == ["done", "done", "not_run", "not_run"]
    assert run(server, *base, "--max-cost", "5") == 0
    assert server.stats().accepted_tasks == 4
    manifest = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert [m["status"] for m in manifest] == ["done"] * 4


# -- polish ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["account"],
        ["status", "1234567890123456789"],
        ["generate", "x", "-o", "OUT"],
        ["run", T2I, "--param", "prompt=x"],
        ["batch", "IN", "-o", "OUT", "--max-in-flight", "2"],
        ["batch", "IN", "-o", "OUT"],
    ],
    ids=lambda v: "-".join(v)[:30],
)
def test_a_bad_key_is_one_message_naming_the_variable_and_leaves_no_journal(
    server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
) -> None:
    """Whatever the command: exit 1, one line naming RUNNINGHUB_API_KEY, no journal left."""
    monkeypatch.setenv("RUNNINGHUB_API_KEY", "sk-wrong-key")
    source = write_lines(tmp_path / "in.txt", ["a"])
    out = tmp_path / "out"
    argv = [str(source) if a == "IN" else str(out) if a == "OUT" else a for a in argv]
    assert run(server, *argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "RUNNINGHUB_API_KEY" in err
    assert "sk-wrong-key" not in err
    assert not (out / JOURNAL_NAME).exists()


def test_status_of_a_failed_task_exits_1_and_says_why_once(
    serve: Callable[..., Server], capsys: pytest.CaptureFixture[str]
) -> None:
    """A FAILED task: exit 1, its reason printed once."""
    server = serve(failure_rate=1.0, failure_codes=("1015",))
    task_id = server.submit({"prompt": "doomed", "resolution": "1k"})
    server.wait_for(lambda fake: fake.tasks[task_id].terminal)
    assert run(server, "status", task_id) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"task {task_id}: FAILED\n")
    error_line = next(line for line in out.splitlines() if "1015" in line)
    reason = error_line.split(": ", 1)[1]
    assert out.count(reason.split(" | ")[0]) == 1


def test_account_prints_the_key_type_once(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """The key type appears once, not twice from two routes."""
    assert run(server, "account") == 0
    out = capsys.readouterr().out
    assert out.count("SHARED") == 1
    assert KEY not in out


def test_progress_never_counts_a_job_saving_its_files_as_running() -> None:
    """A task that ended frees its slot: it is "saving", not "running", while it downloads."""
    tracker = Tracker(3)
    tracker.start()
    tracker.start()
    tracker.ended()
    assert (tracker.running, tracker.saving, tracker.queued) == (1, 1, 1)
    assert "saving 1" in tracker.stats_text()
    tracker.saved(ok=True)
    tracker.ended()
    tracker.saved(ok=False)
    assert (tracker.running, tracker.saving, tracker.done, tracker.failed) == (0, 0, 1, 1)
    assert main(["--version"]) == 0
