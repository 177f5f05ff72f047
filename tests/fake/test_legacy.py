"""Legacy status, outputs and upload, called the way runninghub-sdk and the official nodes do."""

from __future__ import annotations

import hashlib
from typing import Any

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub

from ._clients import WORKFLOW, sdk_post
from ._support import GOOD, submit

pytestmark = pytest.mark.anyio


async def _create(http: aiohttp.ClientSession, fake: FakeRunningHub) -> str:
    answer = await sdk_post(http, fake, "/task/openapi/create", {"workflowId": WORKFLOW})
    task_id: str = answer["data"]["taskId"]
    return task_id


async def _outputs(
    http: aiohttp.ClientSession, fake: FakeRunningHub, task_id: str
) -> dict[str, Any]:
    answer: dict[str, Any] = await sdk_post(
        http, fake, "/task/openapi/outputs", {"taskId": task_id}
    )
    return answer


async def test_status_and_outputs_follow_the_task_from_queued_to_success() -> None:
    """QUEUED -> 813, RUNNING -> 804, SUCCESS -> the file list; status says each in data."""
    async with FakeRunningHub(queue_time=None) as fake, aiohttp.ClientSession() as http:
        task_id = await _create(http, fake)
        status = await sdk_post(http, fake, "/task/openapi/status", {"taskId": task_id})
        assert status == {"code": 0, "msg": "", "data": "QUEUED"}
        assert await _outputs(http, fake, task_id) == {
            "code": 813,
            "msg": "APIKEY_TASK_IS_QUEUED",
            "data": None,
        }
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = await _create(http, fake)
        assert await _outputs(http, fake, task_id) == {
            "code": 804,
            "msg": "APIKEY_TASK_IS_RUNNING",
            "data": None,
        }
        fake.finish(task_id)
        answer = await _outputs(http, fake, task_id)
        assert answer["code"] == 0
        assert answer["msg"] == "success"
        (item,) = answer["data"]
        assert set(item) == {
            "fileUrl",
            "fileType",
            "taskCostTime",
            "nodeId",
            "thirdPartyConsumeMoney",
            "consumeMoney",
            "consumeCoins",
        }
        assert item["fileUrl"] == fake.tasks[task_id].outputs[0]
        assert item["fileType"] == "png"
        assert isinstance(item["consumeCoins"], str)


async def test_outputs_of_a_failed_task_is_805_with_the_failed_reason() -> None:
    """FAILED -> 805 and data.failedReason with the ComfyUI keys; status says FAILED."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = await _create(http, fake)
        fake.fail(task_id, "1000", "node exploded")
        answer = await _outputs(http, fake, task_id)
        assert answer["code"] == 805
        assert answer["msg"] == "APIKEY_TASK_STATUS_ERROR"
        reason = answer["data"]["failedReason"]
        assert reason["exception_message"] == "node exploded"
        assert {"node_id", "node_name", "exception_type", "traceback"} <= set(reason)
        status = await sdk_post(http, fake, "/task/openapi/status", {"taskId": task_id})
        assert status["data"] == "FAILED"


async def test_cancelled_task_reads_cancel_and_has_no_outputs() -> None:
    """After a legacy cancel, status says CANCEL and outputs answers 805 with no reason."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = await _create(http, fake)
        cancel = await sdk_post(http, fake, "/task/openapi/cancel", {"taskId": task_id})
        assert cancel["code"] == 0
        status = await sdk_post(http, fake, "/task/openapi/status", {"taskId": task_id})
        assert status["data"] == "CANCEL"
        answer = await _outputs(http, fake, task_id)
        assert answer == {
            "code": 805,
            "msg": "APIKEY_TASK_STATUS_ERROR",
            "data": {"failedReason": {}},
        }


async def test_legacy_routes_see_standard_model_tasks_too() -> None:
    """A task submitted on a v2 standard-model endpoint reads the same through legacy status."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake, dict(GOOD)))["taskId"]
        status = await sdk_post(http, fake, "/task/openapi/status", {"taskId": task_id})
        assert status["data"] == "RUNNING"


@pytest.mark.parametrize("path", ["/task/openapi/status", "/task/openapi/outputs"])
async def test_unknown_foreign_and_missing_task_ids(path: str) -> None:
    """Unknown or another key's task -> 807; no taskId -> 301; bad apiKey -> 806."""
    fake = FakeRunningHub(api_keys=("a", "b"), duration=None)
    async with fake, aiohttp.ClientSession() as http:
        task_id = await _create(http, fake)  # key "a"
        unknown = await sdk_post(http, fake, path, {"taskId": "1904163390028185602"})
        assert unknown == {"code": 807, "msg": "APIKEY_TASK_NOT_FOUND", "data": None}
        foreign = await sdk_post(http, fake, path, {"taskId": task_id}, key="b")
        assert foreign["code"] == 807
        assert (await sdk_post(http, fake, path, {}))["code"] == 301
        assert (await sdk_post(http, fake, path, {"taskId": task_id}, key="zzz"))["code"] == 806
        as_int = await sdk_post(http, fake, path, {"taskId": int(task_id)})
        assert as_int["code"] in (0, 804)


def _form(
    key: str, data: bytes, filename: str = "cat.png", file_type: str = "image"
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("apiKey", key)
    form.add_field("fileType", file_type)
    form.add_field("file", data, filename=filename, content_type="application/octet-stream")
    return form


async def test_legacy_upload_stores_the_file_under_an_api_filename() -> None:
    """Multipart apiKey/fileType/file -> data.fileName "api/<sha>.<ext>" and the fileType."""
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/task/openapi/upload"
        async with http.post(url, data=_form(fake.api_key, data)) as response:
            assert response.status == 200
            answer = await response.json()
        assert answer["code"] == 0
        assert answer["msg"] == "success"
        file_name = answer["data"]["fileName"]
        assert file_name == f"api/{hashlib.sha256(data).hexdigest()[:32]}.png"
        assert answer["data"]["fileType"] == "image"
        assert fake.uploads[file_name] == data
        async with http.get(f"{fake.base_url}/files/uploads/{file_name}") as response:
            assert await response.read() == data
        # A workflow run may then use the fileName in nodeInfoList.
        node = {"nodeId": "10", "fieldName": "image", "fieldValue": file_name}
        body = {"workflowId": "1947598452328525826", "nodeInfoList": [node]}
        assert (await sdk_post(http, fake, "/task/openapi/create", body))["code"] == 0


async def test_legacy_upload_errors() -> None:
    """Bad key -> HTTP 401 code -1 (as observed); too big -> 809; no file -> 301."""
    async with FakeRunningHub(upload_max_bytes=10) as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/task/openapi/upload"
        async with http.post(url, data=_form("wrong", b"12345")) as response:
            assert response.status == 401
            assert await response.json() == {"code": -1, "msg": "ApiKey verification failed"}
        async with http.post(url, data=_form(fake.api_key, b"x" * 11)) as response:
            assert (await response.json())["code"] == 809
        form = aiohttp.FormData()
        form.add_field("apiKey", fake.api_key)
        async with http.post(url, data=form) as response:
            assert (await response.json())["code"] == 301
        assert fake.stats.uploads == 0
