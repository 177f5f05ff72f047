"""TASK_END webhooks: payload shape, retries, giving up, failure and cancel events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from runninghub_async.testing import FakeRunningHub

from ._support import GOOD, post_json, submit

pytestmark = pytest.mark.anyio


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers a scripted series of statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[dict[str, Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return web.Response(status=status, text="ok")


@asynccontextmanager
async def receiver(*statuses: int) -> AsyncIterator[Receiver]:
    """Serve a `Receiver` answering *statuses* in turn (the last one repeats)."""
    hook = Receiver(list(statuses or (200,)))
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        hook.url = f"http://{host}:{port}/hook"
        yield hook
    finally:
        await runner.cleanup()


async def test_success_webhook_carries_the_legacy_outputs_shape() -> None:
    """A finished task POSTs TASK_END whose eventData string holds code 0 and the file list."""
    async with receiver(200) as hook, FakeRunningHub(duration=None) as fake:
        async with aiohttp.ClientSession() as http:
            task_id = (await submit(http, fake, {**GOOD, "webhookUrl": hook.url}))["taskId"]
        fake.finish(task_id)
        await fake.wait_for(lambda f: f.stats.webhook_deliveries == 1)
        outputs = fake.tasks[task_id].outputs
    (payload,) = hook.received
    assert set(payload) == {"event", "taskId", "eventData"}
    assert payload["event"] == "TASK_END"
    assert payload["taskId"] == task_id
    assert isinstance(payload["eventData"], str)
    assert json.loads(payload["eventData"]) == {
        "code": 0,
        "msg": "success",
        "data": [{"fileUrl": outputs[0], "fileType": "png", "taskCostTime": "0", "nodeId": "2"}],
    }
    assert fake.stats.webhook_attempts == 1
    assert fake.stats.webhook_failures == 0


async def test_failure_webhook_carries_805_and_the_failed_reason() -> None:
    """A failed task's webhook eventData is code 805 with data.failedReason."""
    async with receiver(200) as hook, FakeRunningHub(duration=None) as fake:
        async with aiohttp.ClientSession() as http:
            task_id = (await submit(http, fake, {**GOOD, "webhookUrl": hook.url}))["taskId"]
        fake.fail(task_id, "1501")
        await fake.wait_for(lambda f: f.stats.webhook_deliveries == 1)
    event = json.loads(hook.received[0]["eventData"])
    assert event["code"] == 805
    assert event["msg"] == "APIKEY_TASK_STATUS_ERROR"
    assert event["data"]["failedReason"]["exception_type"] == "ContentModerationError"


async def test_cancelled_task_fires_its_webhook() -> None:
    """Cancelling a task with a webhookUrl delivers a TASK_END event too."""
    async with receiver(200) as hook, FakeRunningHub(duration=None) as fake:
        async with aiohttp.ClientSession() as http:
            task_id = (await submit(http, fake, {**GOOD, "webhookUrl": hook.url}))["taskId"]
            url = f"{fake.base_url}/task/openapi/cancel"
            await post_json(http, url, {"apiKey": fake.api_key, "taskId": task_id})
        await fake.wait_for(lambda f: f.stats.webhook_deliveries == 1)
    assert hook.received[0]["taskId"] == task_id
    assert json.loads(hook.received[0]["eventData"])["code"] == 805


async def test_webhook_is_retried_after_a_non_2xx_answer() -> None:
    """A receiver answering 500 then 200 gets the same event twice and counts one delivery."""
    fake = FakeRunningHub(duration=0.0, webhook_retry_delay=0.01)
    async with receiver(500, 200) as hook, fake:
        async with aiohttp.ClientSession() as http:
            await submit(http, fake, {**GOOD, "webhookUrl": hook.url})
        await fake.wait_for(lambda f: f.stats.webhook_deliveries == 1)
    assert len(hook.received) == 2
    assert hook.received[0] == hook.received[1]
    assert (fake.stats.webhook_attempts, fake.stats.webhook_failures) == (2, 0)


async def test_webhook_gives_up_after_the_configured_attempts() -> None:
    """A receiver that always fails gets webhook_attempts POSTs, then one failure is counted."""
    fake = FakeRunningHub(duration=0.0, webhook_attempts=2, webhook_retry_delay=0.01)
    async with receiver(503) as hook, fake:
        async with aiohttp.ClientSession() as http:
            await submit(http, fake, {**GOOD, "webhookUrl": hook.url})
        await fake.wait_for(lambda f: f.stats.webhook_failures == 1)
    assert len(hook.received) == 2
    assert (fake.stats.webhook_attempts, fake.stats.webhook_deliveries) == (2, 0)


async def test_webhook_to_a_closed_port_is_retried_then_given_up() -> None:
    """Connection errors count as failed attempts, and the fake still exits cleanly."""
    async with receiver(200) as hook:
        dead_url = hook.url  # the port is closed once the receiver stops
    fake = FakeRunningHub(duration=0.0, webhook_attempts=3, webhook_retry_delay=0.01)
    async with fake, aiohttp.ClientSession() as http:
        await submit(http, fake, {**GOOD, "webhookUrl": dead_url})
        await fake.wait_for(lambda f: f.stats.webhook_failures == 1)
    assert fake.stats.webhook_attempts == 3


async def test_pending_webhooks_are_cancelled_at_exit() -> None:
    """Leaving the fake while a delivery waits to retry neither hangs nor leaks a task."""
    fake = FakeRunningHub(duration=0.0, webhook_attempts=5, webhook_retry_delay=30.0)
    async with receiver(500) as hook, fake:
        async with aiohttp.ClientSession() as http:
            await submit(http, fake, {**GOOD, "webhookUrl": hook.url})
        await fake.wait_for(lambda f: f.stats.webhook_attempts == 1)
    assert fake.stats.webhook_deliveries == fake.stats.webhook_failures == 0
