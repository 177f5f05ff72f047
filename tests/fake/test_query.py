"""Query: the documented shapes for RUNNING, SUCCESS, FAILED, CANCEL and unknown tasks."""

from __future__ import annotations

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub

from ._support import bearer, post_json, query, submit

pytestmark = pytest.mark.anyio

_QUERY_FIELDS = [
    "taskId",
    "status",
    "errorCode",
    "errorMessage",
    "failedReason",
    "usage",
    "results",
    "clientId",
    "promptTips",
]


async def test_running_task_has_no_results_and_no_usage() -> None:
    """A RUNNING task queries with results null, usage null and failedReason {}."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        answer = await query(http, fake, task_id)
    assert answer == {
        "taskId": task_id,
        "status": "RUNNING",
        "errorCode": "",
        "errorMessage": "",
        "failedReason": {},
        "usage": None,
        "results": None,
        "clientId": "",
        "promptTips": "",
    }
    assert list(answer) == _QUERY_FIELDS


async def test_queued_task_becomes_running_on_its_own_timer() -> None:
    """A task moves QUEUED -> RUNNING when its queue time passes, without being queried."""
    fake = FakeRunningHub(queue_time=0.05, duration=None)
    async with fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        assert (await query(http, fake, task_id))["status"] in ("QUEUED", "RUNNING")
        await fake.wait_for(lambda f: f.tasks[task_id].status == "RUNNING")
        assert (await query(http, fake, task_id))["status"] == "RUNNING"
        task = fake.tasks[task_id]
    assert task.started_at is not None
    assert task.started_at - task.submitted_at >= 0.04


async def test_successful_task_has_results_and_string_usage() -> None:
    """SUCCESS carries one png result on the fake and usage with string values."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        fake.finish(task_id)
        answer = await query(http, fake, task_id)
        base_url = fake.base_url
    assert list(answer) == _QUERY_FIELDS
    assert answer["status"] == "SUCCESS"
    assert (answer["errorCode"], answer["errorMessage"], answer["failedReason"]) == ("", "", {})
    assert answer["results"] == [
        {
            "url": f"{base_url}/files/outputs/{task_id}/0.png",
            "nodeId": "2",
            "outputType": "png",
            "text": None,
        }
    ]
    assert answer["usage"] == {
        "consumeMoney": "0.40",
        "consumeCoins": "40",
        "taskCostTime": "0",
        "thirdPartyConsumeMoney": None,
    }


async def test_task_finishes_by_itself_at_an_exact_server_time() -> None:
    """A task with a duration ends SUCCESS on its timer; finished_at - started_at >= duration."""
    async with FakeRunningHub(duration=0.05) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        await fake.wait_for(lambda f: f.tasks[task_id].terminal)
        task = fake.tasks[task_id]
        answer = await query(http, fake, task_id)
    assert task.status == answer["status"] == "SUCCESS"
    assert task.started_at is not None
    assert task.finished_at is not None
    assert task.finished_at - task.started_at >= 0.045
    assert answer["usage"]["taskCostTime"] == "0"
    assert task.query_count == 0  # a snapshot: taken before the query
    assert fake.tasks[task_id].query_count == 1


@pytest.mark.parametrize("code", ["1015", "1501", "1505"])
async def test_failed_task_has_code_message_and_failed_reason(code: str) -> None:
    """FAILED carries the code, a bilingual message, a full failedReason and zero-cost usage."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        fake.fail(task_id, code)
        answer = await query(http, fake, task_id)
    assert answer["status"] == "FAILED"
    assert answer["errorCode"] == code
    assert " | " in answer["errorMessage"]
    assert answer["results"] is None
    reason = answer["failedReason"]
    assert set(reason) == {
        "node_id",
        "node_name",
        "exception_type",
        "exception_message",
        "traceback",
        "current_inputs",
        "current_outputs",
    }
    assert reason["exception_message"] == answer["errorMessage"]
    assert isinstance(reason["traceback"], list)
    assert reason["traceback"]
    assert reason["current_inputs"]["prompt"] == ["a red fox in the snow"]
    assert answer["usage"] == {
        "consumeMoney": "0.00",
        "consumeCoins": "0",
        "taskCostTime": "0",
        "thirdPartyConsumeMoney": None,
    }


async def test_failure_rate_makes_tasks_fail_with_a_configured_code() -> None:
    """With failure_rate=1 every task ends FAILED by itself with one of failure_codes."""
    fake = FakeRunningHub(duration=0.0, failure_rate=1.0, failure_codes=("1505",), seed=3)
    async with fake, aiohttp.ClientSession() as http:
        ids = [(await submit(http, fake))["taskId"] for _ in range(3)]
        await fake.wait_for(lambda f: f.stats.failed == 3)
        answers = [await query(http, fake, i) for i in ids]
    assert {a["errorCode"] for a in answers} == {"1505"}
    assert all(a["status"] == "FAILED" and a["failedReason"] for a in answers)


async def test_fail_accepts_a_custom_message() -> None:
    """fake.fail(code, message) reports exactly that message."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        fake.fail(task_id, "1000", "unknown error")
        answer = await query(http, fake, task_id)
    assert (answer["errorCode"], answer["errorMessage"]) == ("1000", "unknown error")


async def test_unknown_task_gets_1004_with_empty_status() -> None:
    """An unknown task id answers status "" and errorCode 1004 with the observed text."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await query(http, fake, "2100773838112505858")
    assert answer == {
        "taskId": "2100773838112505858",
        "status": "",
        "errorCode": "1004",
        "errorMessage": (
            "Task not found, please check the task ID | 任务不存在或已过期，请检查任务ID"
        ),
        "results": None,
        "failedReason": {},
        "usage": None,
        "clientId": "",
        "promptTips": "",
    }


async def test_another_keys_task_is_not_found() -> None:
    """A key cannot see another key's task: 1004."""
    fake = FakeRunningHub(api_keys=("a", "b"), duration=None)
    async with fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake, key="a"))["taskId"]
        assert (await query(http, fake, task_id, key="b"))["errorCode"] == "1004"
        assert (await query(http, fake, task_id, key="a"))["status"] == "RUNNING"


async def test_query_without_a_key_gets_1002() -> None:
    """A query without a valid key gets errorCode 1002."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/openapi/v2/query"
        answer = await post_json(http, url, {"taskId": "1"}, bearer("nope"))
    assert answer["errorCode"] == "1002"
    assert answer["status"] == ""


async def test_query_without_a_task_id_gets_1007() -> None:
    """A query body without taskId gets errorCode 1007."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/openapi/v2/query"
        answer = await post_json(http, url, {}, bearer(fake.api_key))
    assert answer["errorCode"] == "1007"
    assert "taskId" in answer["errorMessage"]


async def test_numeric_task_id_is_accepted() -> None:
    """A taskId sent as a JSON number (legacy int64) finds the task."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        url = f"{fake.base_url}/openapi/v2/query"
        answer = await post_json(http, url, {"taskId": int(task_id)}, bearer(fake.api_key))
    assert answer["taskId"] == task_id


async def test_queries_are_counted_per_task() -> None:
    """stats.queries and queries_per_task count every query of a known task."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        a = (await submit(http, fake))["taskId"]
        b = (await submit(http, fake))["taskId"]
        for task_id in (a, a, a, b):
            await query(http, fake, task_id)
        await query(http, fake, "1234567890123456789")
    stats = fake.stats
    assert stats.queries == 5
    assert stats.queries_per_task == {a: 3, b: 1}
    assert fake.tasks[a].query_count == 3


async def test_image_count_params_give_several_results() -> None:
    """An endpoint asked for imageNum=3 returns three result items."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        body = {"prompt": "fox", "imageNum": "3"}
        endpoint = "alibaba/qwen-image-2.0/text-to-image"
        task_id = (await submit(http, fake, body, endpoint=endpoint))["taskId"]
        fake.finish(task_id)
        answer = await query(http, fake, task_id)
    assert [r["url"].rsplit("/", 1)[1] for r in answer["results"]] == ["0.png", "1.png", "2.png"]
    assert answer["usage"]["consumeMoney"] == "0.39"  # 0.13 per image


@pytest.mark.parametrize(
    ("endpoint", "body", "money"),
    [
        ("rhart-image-n-pro/text-to-image", {"prompt": "x", "resolution": "4k"}, "0.50"),
        ("rhart-image-n-pro-official/text-to-image", {"prompt": "x", "resolution": "2k"}, "1.00"),
        (
            "rhart-image-n-pro-official/text-to-image-ultra",
            {"prompt": "x", "resolution": "8k"},
            "1.12",
        ),
        ("rhart-image-v1/text-to-image", {"prompt": "x", "aspectRatio": "1:1"}, "0.05"),
    ],
)
async def test_usage_carries_the_documented_price(
    endpoint: str, body: dict[str, str], money: str
) -> None:
    """consumeMoney follows the price table by endpoint family and resolution."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake, body, endpoint=endpoint))["taskId"]
        fake.finish(task_id)
        usage = (await query(http, fake, task_id))["usage"]
    assert usage["consumeMoney"] == money
    assert usage["consumeCoins"] == str(round(float(money) * 100))
