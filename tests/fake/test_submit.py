"""Submit: auth, answer shape, validation, unknown endpoints, key types, limits."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub

from ._support import EDIT, GOOD, T2I, bearer, post_json, submit

pytestmark = pytest.mark.anyio


async def test_submit_answers_the_documented_shape() -> None:
    """An accepted submit returns the bare v2 object with a 19-digit id and status RUNNING."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        answer = await submit(http, fake)
    assert list(answer) == [
        "taskId",
        "status",
        "errorCode",
        "errorMessage",
        "results",
        "clientId",
        "promptTips",
    ]
    assert re.fullmatch(r"[1-9]\d{18}", answer["taskId"])
    assert answer["status"] == "RUNNING"
    assert (answer["errorCode"], answer["errorMessage"], answer["results"]) == ("", "", None)
    assert re.fullmatch(r"[0-9a-f]{32}", answer["clientId"])
    tips = json.loads(answer["promptTips"])
    assert tips == {"result": True, "error": None, "outputs_to_execute": ["2"], "node_errors": {}}
    task = fake.tasks[answer["taskId"]]
    assert task.status == "RUNNING"
    assert task.params == GOOD
    assert task.started_at == task.submitted_at


async def test_submit_answers_queued_when_the_task_waits_first() -> None:
    """With a queue time above zero the submit says QUEUED and the task has not started."""
    async with FakeRunningHub(queue_time=30.0) as fake, aiohttp.ClientSession() as http:
        answer = await submit(http, fake)
        task = fake.tasks[answer["taskId"]]
    assert answer["status"] == "QUEUED"
    assert task.status == "QUEUED"
    assert task.started_at is None


async def test_task_ids_are_unique_19_digit_strings() -> None:
    """Every accepted submit gets a distinct 19-digit numeric string id."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        ids = [(await submit(http, fake))["taskId"] for _ in range(25)]
    assert len(set(ids)) == 25
    assert all(isinstance(i, str) and re.fullmatch(r"\d{19}", i) for i in ids)


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong-key"), {"Authorization": "test-key"}, {"Authorization": "Basic test-key"}],
)
async def test_bad_or_missing_key_gets_1002(headers: dict[str, str]) -> None:
    """A submit without a valid Bearer key gets errorCode 1002 and creates nothing."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/openapi/v2/{T2I}"
        answer = await post_json(http, url, GOOD, headers)
        assert answer == {
            "taskId": "",
            "status": "",
            "errorCode": "1002",
            "errorMessage": "invalid api key | API Key无效",
            "results": None,
            "clientId": "",
            "promptTips": "",
        }
        assert len(fake.tasks) == 0
        assert fake.stats.rejections == {"1002": 1}


_TOO_MANY = [f"https://example.com/{i}.png" for i in range(11)]


@pytest.mark.parametrize(
    ("endpoint", "body", "field"),
    [
        (T2I, {"resolution": "1k"}, "prompt"),
        (T2I, {"prompt": "", "resolution": "1k"}, "prompt"),
        (T2I, {"prompt": "x" * 20001, "resolution": "1k"}, "prompt"),
        (T2I, {"prompt": "fox"}, "resolution"),
        (T2I, {"prompt": "fox", "resolution": "8k"}, "resolution"),
        (T2I, {"prompt": "fox", "resolution": "1K"}, "resolution"),
        (T2I, {**GOOD, "aspectRatio": "7:3"}, "aspectRatio"),
        (EDIT, GOOD, "imageUrls"),
        (EDIT, {**GOOD, "imageUrls": "https://example.com/a.png"}, "imageUrls"),
        (EDIT, {**GOOD, "imageUrls": _TOO_MANY}, "imageUrls"),
        (EDIT, {**GOOD, "imageUrls": ["https://example.com/a.png", 3]}, "imageUrls[1]"),
        ("rhart-image-v1/text-to-image", {"prompt": "fox"}, "aspectRatio"),
        ("rhart-image-n-pro-official/text-to-image-ultra", GOOD, "resolution"),
        ("rhart-image-n-g31-flash/text-to-image", {**GOOD, "aspectRatio": "auto"}, "aspectRatio"),
        (T2I, {**GOOD, "webhookUrl": "ftp://example.com/hook"}, "webhookUrl"),
        ("seedream-v4/text-to-image", {"prompt": "fox", "anything": [1, 2]}, "anything"),
        ("seedream-v4/text-to-image", {"prompt": "fox", "width": 99999}, "width"),
        ("kling-v2.5-turbo-pro/text-to-video", {"prompt": "fox", "duration": "99"}, "duration"),
    ],
)
async def test_invalid_params_get_1007_naming_the_field(
    endpoint: str, body: dict[str, Any], field: str
) -> None:
    """A body breaking the endpoint's schema gets errorCode 1007 naming the field; no task."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await submit(http, fake, body, endpoint=endpoint)
        assert answer["errorCode"] == "1007"
        assert (answer["taskId"], answer["status"], answer["results"]) == ("", "", None)
        assert field in answer["errorMessage"]
        assert len(fake.tasks) == 0


async def test_every_violation_is_named() -> None:
    """A body with two problems gets one 1007 naming both fields."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await submit(http, fake, {"aspectRatio": "7:3"})
    assert "prompt" in answer["errorMessage"]
    assert "resolution" in answer["errorMessage"]
    assert "aspectRatio" in answer["errorMessage"]


@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json", b'"prompt"'])
async def test_body_that_is_not_a_json_object_gets_1007(raw: bytes) -> None:
    """A submit body that is not a JSON object gets errorCode 1007."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/openapi/v2/{T2I}"
        headers = {**bearer(fake.api_key), "Content-Type": "application/json"}
        async with http.post(url, data=raw, headers=headers) as response:
            answer = await response.json()
        assert answer["errorCode"] == "1007"
        assert len(fake.tasks) == 0


async def test_validate_false_accepts_any_body_on_catalogued_endpoints() -> None:
    """With validate=False a body missing required params is accepted."""
    fake = FakeRunningHub(validate=False, duration=None)
    async with fake, aiohttp.ClientSession() as http:
        answer = await submit(http, fake, {"whatever": 1})
    assert answer["errorCode"] == ""
    assert len(fake.tasks) == 1


@pytest.mark.parametrize(
    "endpoint",
    ["no-such-model/text-to-image", "rhart-image-n-pro", "file/upload", T2I + "/extra"],
)
async def test_unknown_endpoint_gets_1000(endpoint: str) -> None:
    """A submit to a path that is no documented endpoint gets errorCode 1000 unknown error."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await submit(http, fake, endpoint=endpoint)
        assert answer["errorCode"] == "1000"
        assert answer["errorMessage"] == "unknown error"
        assert len(fake.tasks) == 0


async def test_documented_name_is_not_a_path() -> None:
    """A catalogued endpoint's display name is not accepted as a path (errorCode 1000)."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        name = "nano-banana-pro/text-to-image-channel-low-price"
        answer = await submit(http, fake, endpoint=name)
    assert answer["errorCode"] == "1000"


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("rhart-image/f-dev", {"23##text": "a cat", "43##select": "1"}),
        ("run/ai-app/1937084629516193794", {"nodeInfoList": []}),
        ("run/workflow/1904163390028185602", {}),
        ("rhart-image-n-g31-flash-lite/text-to-image", {"prompt": "fox"}),
    ],
)
async def test_known_uncatalogued_endpoints_accept_any_object(
    endpoint: str, body: dict[str, Any]
) -> None:
    """Params-less catalogued models, runs and the lite pages accept these objects."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        answer = await submit(http, fake, body, endpoint=endpoint)
        assert answer["errorCode"] == "", answer
        assert fake.tasks[answer["taskId"]].endpoint == endpoint


@pytest.mark.parametrize("key_type", ["NORMAL", "EXCLUSIVE"])
async def test_non_shared_key_gets_1014_on_standard_models(key_type: str) -> None:
    """A NORMAL or EXCLUSIVE key gets 1014 on a standard model but may run a workflow."""
    fake = FakeRunningHub(api_keys=("k",), key_types={"k": key_type}, duration=None)
    async with fake, aiohttp.ClientSession() as http:
        answer = await submit(http, fake)
        assert answer == {
            "taskId": "",
            "status": "",
            "errorCode": "1014",
            "errorMessage": (
                "Access Denied: Standard Model API is restricted to Enterprise-Shared API Keys"
                " only.|访问被拒绝：标准模型API仅限企业级-共享API Key调用。"
            ),
            "results": None,
            "clientId": "",
            "promptTips": "",
        }
        run = await submit(http, fake, {}, endpoint="run/workflow/1904163390028185602")
        assert run["errorCode"] == ""
        assert len(fake.tasks) == 1


async def test_submit_over_the_concurrency_limit_gets_421_and_creates_nothing() -> None:
    """Once a key has N unfinished tasks the next submit gets 421; a finished one frees a slot."""
    fake = FakeRunningHub(concurrency_limit=2, duration=None)
    async with fake, aiohttp.ClientSession() as http:
        first = await submit(http, fake)
        await submit(http, fake)
        rejected = await submit(http, fake)
        assert rejected == {
            "taskId": "",
            "status": "",
            "errorCode": "421",
            "errorMessage": (
                "api queue limit reached, please retry later | "
                "API 并发数已达上线，请降低并发或稍后重试"
            ),
            "results": None,
            "clientId": "",
            "promptTips": "",
        }
        assert len(fake.tasks) == 2
        fake.finish(first["taskId"])
        assert (await submit(http, fake))["errorCode"] == ""
    assert fake.stats.rejections == {"421": 1}
    assert fake.stats.accepted_tasks == 3
    assert fake.stats.max_running_per_key == {fake.api_key: 2}


async def test_queued_tasks_count_toward_the_concurrency_limit() -> None:
    """QUEUED tasks hold a slot just like RUNNING ones."""
    fake = FakeRunningHub(concurrency_limit=1, queue_time=None)
    async with fake, aiohttp.ClientSession() as http:
        assert (await submit(http, fake))["status"] == "QUEUED"
        assert (await submit(http, fake))["errorCode"] == "421"


async def test_concurrency_limit_is_per_key() -> None:
    """One key at its limit does not block another key."""
    fake = FakeRunningHub(api_keys=("a", "b"), concurrency_limit=1, duration=None)
    async with fake, aiohttp.ClientSession() as http:
        assert (await submit(http, fake, key="a"))["errorCode"] == ""
        assert (await submit(http, fake, key="a"))["errorCode"] == "421"
        assert (await submit(http, fake, key="b"))["errorCode"] == ""
    assert fake.stats.max_running_per_key == {"a": 1, "b": 1}


async def test_rate_limit_gets_1003_on_task_endpoints() -> None:
    """Requests beyond the per-key rate get errorCode 1003 in the task shape."""
    fake = FakeRunningHub(rate_limit=1.0, duration=None)
    async with fake, aiohttp.ClientSession() as http:
        assert (await submit(http, fake))["errorCode"] == ""
        limited = await submit(http, fake)
        url = f"{fake.base_url}/openapi/v2/query"
        queried = await post_json(http, url, {"taskId": "1"}, bearer(fake.api_key))
    assert limited == {
        "taskId": "",
        "status": "",
        "errorCode": "1003",
        "errorMessage": "rate limit exceeded",
        "results": None,
        "clientId": "",
        "promptTips": "",
    }
    assert queried["errorCode"] == "1003"
    assert len(fake.tasks) == 1
    assert fake.stats.rejections == {"1003": 2}


async def test_rate_limit_uses_the_envelope_on_management_endpoints() -> None:
    """queue/status over the rate answers {"code": 1003, ...}; other keys are unaffected."""
    fake = FakeRunningHub(api_keys=("a", "b"), rate_limit=1.0)
    async with fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/openapi/v2/queue/status"
        answers = []
        for key in ("a", "a", "b"):
            async with http.get(url, headers=bearer(key)) as response:
                answers.append(await response.json())
    assert answers[0]["code"] == 0
    assert answers[1] == {"code": 1003, "msg": "rate limit exceeded", "data": None}
    assert answers[2]["code"] == 0


async def test_webhook_url_is_stripped_from_the_stored_params() -> None:
    """webhookUrl is accepted on a standard model, kept apart and not validated as a param."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        body = {**GOOD, "webhookUrl": "http://127.0.0.1:9/hook"}
        answer = await submit(http, fake, body)
        task = fake.tasks[answer["taskId"]]
    assert task.params == GOOD
    assert task.webhook_url == "http://127.0.0.1:9/hook"
