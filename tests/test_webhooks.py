"""Webhooks are a fast path: a TASK_END callback makes the poller check that task at once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web

from runninghub_async import PollPolicy, RunningHub
from runninghub_async.testing import FakeRunningHub

from .conftest import FAST_RETRY

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
SLOW_POLL = PollPolicy(initial_delay=30.0, min_interval=30.0, max_interval=60.0)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[RunningHub]]]:
    """A webhook endpoint on 127.0.0.1 that hands callbacks to the client under test."""
    clients: list[RunningHub] = []

    async def hook(request: web.Request) -> web.Response:
        clients[0].handle_webhook(await request.read())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", clients
    finally:
        await runner.cleanup()


async def test_webhook_resolves_a_job_long_before_the_next_poll(
    receiver: tuple[str, list[RunningHub]],
) -> None:
    """With checks 30 s apart, the callback still ends the wait at once, after one query."""
    url, clients = receiver
    async with FakeRunningHub(duration=None) as fake:
        client = RunningHub(
            api_key=fake.api_key, base_url=fake.base_url, poll=SLOW_POLL, retry=FAST_RETRY
        )
        clients.append(client)
        async with client:
            job = await client.submit(T2I, {"prompt": "x", "resolution": "1k"}, webhook_url=url)
            fake.finish(job.task_id)
            with anyio.fail_after(5):
                result = await job.wait()
        assert result.task_id == job.task_id
        assert result.usage is not None  # confirmed by a real query, not taken from the hook
        assert fake.stats.queries_per_task[job.task_id] == 1
        assert fake.stats.webhook_deliveries == 1


async def test_webhook_payloads_are_checked(fake: FakeRunningHub) -> None:
    """Unknown tasks are ignored; payloads that are not TASK_END callbacks are refused."""
    async with RunningHub(api_key=fake.api_key, base_url=fake.base_url) as client:
        assert (
            client.handle_webhook({"event": "TASK_END", "taskId": "1234567890123456789"}) is False
        )
        with pytest.raises(ValueError, match="TASK_END"):
            client.handle_webhook({"event": "OTHER", "taskId": "1"})
        with pytest.raises(ValueError, match="JSON"):
            client.handle_webhook(b"{not json")
        with pytest.raises(ValueError, match="taskId"):
            client.handle_webhook('{"event": "TASK_END", "taskId": "../x"}')
