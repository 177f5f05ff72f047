"""accountStatus (legacy envelope, lowercase apikey) and v2 queue/status."""

from __future__ import annotations

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub

from ._support import bearer, post_json, submit

pytestmark = pytest.mark.anyio


async def _account(http: aiohttp.ClientSession, fake: FakeRunningHub, body: object) -> object:
    return await post_json(http, f"{fake.base_url}/uc/openapi/accountStatus", body)


async def _queue_status(
    http: aiohttp.ClientSession, fake: FakeRunningHub, key: str | None = None
) -> object:
    url = f"{fake.base_url}/openapi/v2/queue/status"
    async with http.get(url, headers=bearer(key or fake.api_key)) as response:
        assert response.status == 200
        return await response.json()


async def test_account_status_reports_strings_and_the_live_task_count() -> None:
    """accountStatus answers the legacy envelope; currentTaskCounts counts unfinished tasks."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        await submit(http, fake)
        await submit(http, fake)
        answer = await _account(http, fake, {"apikey": fake.api_key})
    assert answer == {
        "code": 0,
        "msg": "success",
        "data": {
            "remainCoins": "99999",
            "currentTaskCounts": "2",
            "remainMoney": "999",
            "currency": "CNY",
            "apiType": "SHARED",
        },
    }


async def test_account_status_follows_the_knobs() -> None:
    """currency, balances and apiType come from the constructor."""
    fake = FakeRunningHub(
        api_keys=("k",),
        key_types={"k": "NORMAL"},
        currency="USD",
        remain_money="12.5",
        remain_coins="7",
    )
    async with fake, aiohttp.ClientSession() as http:
        answer = await _account(http, fake, {"apikey": "k"})
    assert answer == {
        "code": 0,
        "msg": "success",
        "data": {
            "remainCoins": "7",
            "currentTaskCounts": "0",
            "remainMoney": "12.5",
            "currency": "USD",
            "apiType": "NORMAL",
        },
    }


@pytest.mark.parametrize("body", [{}, {"apiKey": "test-key"}, {"apikey": ""}, ["test-key"]])
async def test_account_status_without_lowercase_apikey_gets_1601(body: object) -> None:
    """Without the lowercase apikey field the answer is 1601, even with a Bearer header."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/uc/openapi/accountStatus"
        answer = await post_json(http, url, body, bearer(fake.api_key))
    assert answer == {"code": 1601, "msg": "param apiKey is required", "data": None}


async def test_account_status_with_an_unknown_key_gets_806() -> None:
    """An unknown key gets code 806 APIKEY_USER_NOT_FOUND."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await _account(http, fake, {"apikey": "not-a-key"})
    assert answer == {"code": 806, "msg": "APIKEY_USER_NOT_FOUND", "data": None}


async def test_queue_status_reports_live_counts_as_strings() -> None:
    """queue/status splits the key's unfinished tasks into running and queued."""
    fake = FakeRunningHub(duration=None, queue_time=None)
    async with fake, aiohttp.ClientSession() as http:
        queued = (await submit(http, fake))["taskId"]
        await submit(http, fake)
        await submit(http, fake)
        fake.finish(queued)
        # the other two stay QUEUED (queue_time=None); finish moved one to SUCCESS
        answer = await _queue_status(http, fake)
    assert answer == {
        "code": 0,
        "msg": "success",
        "data": {
            "apiKeyType": "SHARED",
            "concurrentLimit": "50",
            "runningCount": "0",
            "queuedCount": "2",
            "totalCurrentTasks": "2",
        },
    }


async def test_queue_status_counts_running_tasks() -> None:
    """RUNNING tasks show in runningCount; the limit reported is the concurrency limit."""
    fake = FakeRunningHub(duration=None, concurrency_limit=3)
    async with fake, aiohttp.ClientSession() as http:
        await submit(http, fake)
        answer = await _queue_status(http, fake)
    assert answer == {
        "code": 0,
        "msg": "success",
        "data": {
            "apiKeyType": "SHARED",
            "concurrentLimit": "3",
            "runningCount": "1",
            "queuedCount": "0",
            "totalCurrentTasks": "1",
        },
    }


async def test_queue_status_reports_the_configured_limit_and_key_type() -> None:
    """concurrent_limit_report and key_types show in queue/status."""
    fake = FakeRunningHub(api_keys=("k",), key_types={"k": "NORMAL"}, concurrent_limit_report=2)
    async with fake, aiohttp.ClientSession() as http:
        answer = await _queue_status(http, fake)
    assert isinstance(answer, dict)
    assert answer["data"]["apiKeyType"] == "NORMAL"
    assert answer["data"]["concurrentLimit"] == "2"


async def test_queue_status_with_a_bad_key_gets_401() -> None:
    """queue/status with an unknown key answers code 401 in the body."""
    async with FakeRunningHub() as fake, aiohttp.ClientSession() as http:
        answer = await _queue_status(http, fake, key="wrong")
    assert answer == {
        "code": 401,
        "msg": "ApiKey verification failed: API Key不存在",
        "data": None,
    }
