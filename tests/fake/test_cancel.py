"""Legacy cancel: running, queued, finished, unknown and foreign tasks."""

from __future__ import annotations

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub

from ._support import post_json, query, submit

pytestmark = pytest.mark.anyio


async def _cancel(
    http: aiohttp.ClientSession, fake: FakeRunningHub, task_id: str, key: str | None = None
) -> object:
    body = {"apiKey": fake.api_key if key is None else key, "taskId": task_id}
    return await post_json(http, f"{fake.base_url}/task/openapi/cancel", body)


async def test_cancel_of_a_running_task_makes_it_cancel_and_frees_its_slot() -> None:
    """Cancelling a RUNNING task answers success, query says CANCEL, the slot is free again."""
    fake = FakeRunningHub(duration=None, concurrency_limit=1)
    async with fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        assert (await submit(http, fake))["errorCode"] == "421"
        answer = await _cancel(http, fake, task_id)
        assert answer == {"code": 0, "msg": "success", "data": None}
        queried = await query(http, fake, task_id)
        assert queried["status"] == "CANCEL"
        assert queried["results"] is None
        assert queried["usage"]["consumeMoney"] == "0.00"
        assert (await submit(http, fake))["errorCode"] == ""
        task = fake.tasks[task_id]
    assert task.status == "CANCEL"
    assert task.finished_at is not None
    assert fake.stats.cancels == 1
    assert fake.stats.cancelled == 1


async def test_cancel_of_a_queued_task() -> None:
    """A QUEUED task can be cancelled; it never started."""
    async with FakeRunningHub(queue_time=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        assert (await _cancel(http, fake, task_id)) == {"code": 0, "msg": "success", "data": None}
        task = fake.tasks[task_id]
        assert task.status == "CANCEL"
        assert task.started_at is None
        assert fake.stats.queued == 0


async def test_cancel_of_a_finished_task_gets_805() -> None:
    """A task that already ended cannot be cancelled: code 805."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        fake.finish(task_id)
        answer = await _cancel(http, fake, task_id)
        assert answer == {"code": 805, "msg": "APIKEY_TASK_STATUS_ERROR", "data": None}
        assert fake.tasks[task_id].status == "SUCCESS"


@pytest.mark.parametrize("code", [423, 807])
async def test_cancel_of_an_unknown_task_gets_the_configured_code(code: int) -> None:
    """An unknown task id answers TASK_NOT_FOUNED with cancel_not_found_code (423 default)."""
    async with FakeRunningHub(cancel_not_found_code=code) as fake, aiohttp.ClientSession() as http:
        answer = await _cancel(http, fake, "1904163390028185602")
    assert answer == {"code": code, "msg": "TASK_NOT_FOUNED", "data": None}


async def test_cancel_of_another_keys_task_is_not_found() -> None:
    """A key cannot cancel another key's task; it stays RUNNING."""
    fake = FakeRunningHub(api_keys=("a", "b"), duration=None)
    async with fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake, key="a"))["taskId"]
        answer = await _cancel(http, fake, task_id, key="b")
        assert answer == {"code": 423, "msg": "TASK_NOT_FOUNED", "data": None}
        assert fake.tasks[task_id].status == "RUNNING"


@pytest.mark.parametrize("key", ["", "wrong"])
async def test_cancel_with_a_bad_key_gets_806(key: str) -> None:
    """A missing or unknown apiKey in the cancel body answers 806."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        answer = await _cancel(http, fake, task_id, key=key)
        assert answer == {"code": 806, "msg": "APIKEY_USER_NOT_FOUND", "data": None}
        assert fake.tasks[task_id].status == "RUNNING"
