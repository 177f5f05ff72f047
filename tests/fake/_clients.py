"""The HTTP calls two third-party RunningHub clients make, replayed with plain aiohttp.

runninghub-sdk sends every call with ``Host: www.runninghub.cn``,
``Content-Type: application/json`` and ``Authorization: Bearer <key>``; legacy
calls also carry ``apiKey`` in the JSON body, v2 calls do not.  runninghub-cli
calls the SDK.  These helpers send exactly that and return the decoded answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiohttp
import anyio
from aiohttp import web

APP = "1937084629516193794"  # a default app: node 12 "image", node 52 "text"
WORKFLOW = "1904163390028185602"  # a default text-to-image workflow
PROMPT_NODE = {"nodeId": "6", "fieldName": "text", "fieldValue": "a red fox"}
APP_NODE = {"nodeId": "52", "fieldName": "text", "fieldValue": "watercolour"}


class Target(Protocol):
    """Where to send: a `FakeRunningHub` or a standalone one's URL and key."""

    @property
    def base_url(self) -> str: ...

    @property
    def api_key(self) -> str: ...


def sdk_headers(key: str) -> dict[str, str]:
    """The default headers of runninghub-sdk's HTTP client."""
    return {
        "Host": "www.runninghub.cn",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {key}",
    }


async def sdk_post(
    http: aiohttp.ClientSession,
    fake: Target,
    path: str,
    body: dict[str, Any],
    *,
    legacy: bool = True,
    key: str | None = None,
) -> Any:
    """POST like runninghub-sdk: ``apiKey`` merged into the body for legacy routes."""
    api_key = key or fake.api_key
    payload = {**body, "apiKey": api_key} if legacy else body
    async with http.post(
        f"{fake.base_url}{path}", json=payload, headers=sdk_headers(api_key)
    ) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def sdk_get(
    http: aiohttp.ClientSession,
    fake: Target,
    path: str,
    params: dict[str, str],
    *,
    key: str | None = None,
) -> Any:
    """GET like runninghub-sdk (query parameters, the same default headers)."""
    async with http.get(
        f"{fake.base_url}{path}", params=params, headers=sdk_headers(key or fake.api_key)
    ) as response:
        assert response.status == 200, await response.text()
        return await response.json()


class Hook:
    """A webhook receiver that records payloads and answers scripted statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[dict[str, Any]] = []
        self.url = ""
        self.arrived = anyio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        self.arrived.set()
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return web.Response(status=status, text=f"answered {status}")


@asynccontextmanager
async def hook_server(*statuses: int) -> AsyncIterator[Hook]:
    """Serve a `Hook` on 127.0.0.1 answering *statuses* in turn (the last repeats)."""
    hook = Hook(list(statuses or (200,)))
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        hook.url = f"http://{host}:{port}/hook"
        yield hook
    finally:
        await runner.cleanup()
