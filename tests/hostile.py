"""Small hostile HTTP servers on 127.0.0.1, for tests of what the client does when they lie."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
from aiohttp import web

from runninghub_async import RunningHub

from .conftest import FAST_POLL, FAST_RETRY

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KEY = "hostile-test-key"


class Recorder:
    """Counts requests by path."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def hit(self, request: web.Request) -> None:
        self.calls[request.path] = self.calls.get(request.path, 0) + 1


@contextlib.asynccontextmanager
async def serve(routes: Mapping[tuple[str, str], Handler]) -> AsyncIterator[str]:
    """Serve *routes* (``(method, path) -> handler``) and yield the base URL."""
    app = web.Application()
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    async with serve_app(app) as base:
        yield base


@contextlib.asynccontextmanager
async def serve_app(app: web.Application, **options: Any) -> AsyncIterator[str]:
    """Serve *app* on 127.0.0.1 (``AppRunner`` *options*) and yield its base URL."""
    runner = web.AppRunner(app, handle_signals=False, **options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def task_body(task_id: str, status: str, **extra: Any) -> web.Response:
    """A v2 task-shaped answer."""
    body = {"taskId": task_id, "status": status, "errorCode": "", "errorMessage": ""}
    body.update(extra)
    return web.json_response(body)


def success_body(task_id: str, url: str) -> web.Response:
    """A SUCCESS answer with one output."""
    return web.Response(
        text=json.dumps(
            {
                "taskId": task_id,
                "status": "SUCCESS",
                "errorCode": "",
                "errorMessage": "",
                "results": [{"url": url, "outputType": "png"}],
            }
        ),
        content_type="application/json",
    )


def client_for(base_url: str, **overrides: object) -> RunningHub:
    """A client of *base_url* with the tests' fast cadence and retries (override by keyword)."""
    options: dict[str, object] = {
        "api_key": KEY,
        "base_url": base_url,
        "poll": FAST_POLL,
        "retry": FAST_RETRY,
        "requests_per_second": None,
        "seed": 3,
    }
    options.update(overrides)
    return RunningHub(**options)  # type: ignore[arg-type]


async def listing(path: Path) -> list[str]:
    """The names in directory *path*, sorted (a download must leave no ``.part`` behind)."""
    return sorted([entry.name async for entry in anyio.Path(path).iterdir()])
