"""AI-app and workflow runs: both input forms, local files, checks before any request."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from runninghub_async import (
    InvalidParametersError,
    NodeInput,
    RunningHub,
    TaskStatus,
    inputs_body,
)
from runninghub_async.testing import FakeRunningHub
from runninghub_async.testing._png import render_png

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio

APP = "1937084629516193794"  # node 12 "image", node 52 "text"
TXT2IMG = "1904163390028185602"  # node 6 text, node 3 KSampler
IMG2IMG = "1947598452328525826"  # node 10 LoadImage


async def test_run_app_with_a_mapping_sends_the_documented_node_info_list(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """{"52.text": ...} becomes nodeInfoList; the run is a job like any other."""
    result = await client.run_app(APP, {"52.text": "watercolour"}, instance_type="default")
    assert result.status is TaskStatus.SUCCESS
    assert result.outputs[0].url
    task = fake.tasks[result.task_id]
    assert task.endpoint == f"run/ai-app/{APP}"
    assert task.params["nodeInfoList"] == [
        {"nodeId": "52", "fieldName": "text", "fieldValue": "watercolour"}
    ]
    assert task.params["instanceType"] == "default"
    assert "usePersonalQueue" not in task.params  # None options are not sent


async def test_run_workflow_with_node_inputs_sends_numbers_as_text(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """NodeInput items with an int node id, an int and a bool value: all strings on the wire."""
    inputs = [NodeInput(6, "text", "a red fox"), NodeInput("3", "seed", 42)]
    job = await client.submit_workflow(TXT2IMG, inputs, add_metadata=True)
    assert job.endpoint == f"run/workflow/{TXT2IMG}"
    result = await job.wait()
    assert result.task_id == job.task_id
    params = fake.tasks[job.task_id].params
    assert params["nodeInfoList"] == [
        {"nodeId": "6", "fieldName": "text", "fieldValue": "a red fox"},
        {"nodeId": "3", "fieldName": "seed", "fieldValue": "42"},
    ]
    assert params["addMetadata"] is True


@pytest.mark.parametrize("form", ["path", "bytes", "file"])
async def test_a_local_file_is_uploaded_once_and_its_file_name_sent(
    client: RunningHub, fake: FakeRunningHub, tmp_path: Path, form: str
) -> None:
    """A Path, bytes or binary file value is uploaded first; the node gets its fileName."""
    data = render_png("input")
    image = tmp_path / "in.png"
    image.write_bytes(data)
    value: Any = {"path": image, "bytes": data, "file": io.BytesIO(data)}[form]
    result = await client.run_workflow(IMG2IMG, {"10.image": value, "6.text": "blue"})
    assert fake.stats.uploads == 1
    (file_name,) = fake.uploads
    assert fake.uploads[file_name] == data
    sent: Any = fake.tasks[result.task_id].params["nodeInfoList"]
    assert sent[0] == {"nodeId": "10", "fieldName": "image", "fieldValue": file_name}
    # The same content again: no second upload.
    await client.run_app(APP, {"12.image": data})
    assert fake.stats.uploads == 1


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"12image": "x"}, "inputs['12image']"),
        ({".image": "x"}, "inputs['.image']"),
        ({"12.": "x"}, "inputs['12.']"),
        ({"12.image": None}, "inputs['12.image']"),
        ({"12.image": {"nested": 1}}, "inputs['12.image']"),
        ({"12.image": float("nan")}, "inputs['12.image']"),
        ([NodeInput("1 2", "image", "x")], "inputs[0].node_id"),
        ([NodeInput("12", "", "x")], "inputs[0].field_name"),
        ([NodeInput("12", "image", "a"), NodeInput(12, "image", "b")], "inputs[1]"),
    ],
    ids=lambda v: None if isinstance(v, str) else repr(v)[:30],
)
async def test_bad_inputs_are_refused_before_any_request(
    client: RunningHub, fake: FakeRunningHub, inputs: Any, field: str
) -> None:
    """A malformed key or value raises InvalidParametersError naming it; nothing is sent."""
    with pytest.raises(InvalidParametersError) as caught:
        await client.submit_app(APP, inputs)
    assert caught.value.code == "local"
    assert caught.value.field == field
    assert fake.stats.requests_total == 0


@pytest.mark.parametrize("bad", ["abc", "", "12/34", True])
async def test_a_bad_id_is_refused_before_any_request(
    client: RunningHub, fake: FakeRunningHub, bad: Any
) -> None:
    """An app or workflow id must be digits."""
    with pytest.raises(InvalidParametersError) as caught:
        await client.submit_workflow(bad, {})
    assert caught.value.field == "workflow_id"
    assert fake.stats.requests_total == 0


async def test_inputs_that_are_not_inputs_raise_type_error(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """A list of tuples or a string is a TypeError, before any request."""
    with pytest.raises(TypeError, match="NodeInput"):
        await client.submit_app(APP, [("12", "image", "x")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        await client.submit_app(APP, "12.image=x")  # type: ignore[arg-type]
    assert fake.stats.requests_total == 0


async def test_a_node_the_app_lacks_is_refused_by_runninghub(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """RunningHub's 1101 for an unknown node field is an InvalidParametersError; no task."""
    with pytest.raises(InvalidParametersError) as caught:
        await client.submit_app(APP, {"99.text": "x"})
    assert caught.value.code == "1101"
    assert len(fake.tasks) == 0


async def test_a_local_file_is_measured_before_anything_is_uploaded(
    make_client: ClientFactory, fake: FakeRunningHub, tmp_path: Path
) -> None:
    """A missing file among several fails before the first upload."""
    good = tmp_path / "good.png"
    good.write_bytes(render_png("good"))
    async with make_client() as client:
        with pytest.raises(FileNotFoundError, match=r"missing\.png"):
            await client.submit_app(APP, {"12.image": good, "52.text": tmp_path / "missing.png"})
    assert fake.stats.requests_total == 0


async def test_run_many_batches_app_runs_with_inputs_body(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """inputs_body() builds each item's body for run_many("run/ai-app/<id>", ...)."""
    prompts = ["one", "two", "three"]
    bodies = (inputs_body({"52.text": p}, instanceType="default") for p in prompts)
    items = [item async for item in client.run_many(f"run/ai-app/{APP}", bodies)]
    assert all(item.ok for item in items)
    lists: list[Any] = [t.params["nodeInfoList"] for t in fake.tasks.values()]
    sent = sorted(entries[0]["fieldValue"] for entries in lists)
    assert sent == sorted(prompts)


def test_inputs_body_refuses_local_files() -> None:
    """inputs_body cannot upload: a local file is a TypeError telling what to do."""
    with pytest.raises(TypeError, match="upload it first"):
        inputs_body({"12.image": b"\x89PNG"})
    assert inputs_body([NodeInput("5", "width", 512)]) == {
        "nodeInfoList": [{"nodeId": "5", "fieldName": "width", "fieldValue": "512"}]
    }
