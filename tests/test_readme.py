"""The README's examples run against the fake, and its set-up commands are the ones CI uses.

Each python block runs as a new user would paste it: in a fresh directory (with the
``photo.png`` and ``prompts.txt`` it mentions), with ``RUNNINGHUB_API_KEY`` and
``RUNNINGHUB_BASE_URL`` pointing at a fake, in a thread of its own (a script's
``anyio.run`` needs a thread without a running loop).  Blocks that only define an app or
a handler are then driven the way their server or bot would drive them.  The one liberty
taken: clients get a fast poll policy, as the fake's jobs last milliseconds.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from aiohttp import ClientSession, web

from runninghub_async import _client
from runninghub_async.testing import FakeRunningHub
from runninghub_async.testing._png import render_png

from .conftest import FAST_POLL
from .hostile import serve_app
from .redis_support import RedisServer

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)

pytestmark = pytest.mark.anyio


def _title(source: str) -> str:
    index = TEXT.index(source)
    heading = TEXT.rfind("\n## ", 0, index)
    return TEXT[heading + 4 : TEXT.index("\n", heading + 4)]


@pytest.fixture
def sandbox(
    tmp_path: Path, fake: FakeRunningHub, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A working directory and an environment in which README code meets the fake."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photo.png").write_bytes(render_png("readme"))
    (tmp_path / "prompts.txt").write_text("a koi pond\na paper boat\na lantern\n")
    monkeypatch.setenv("RUNNINGHUB_API_KEY", fake.api_key)
    monkeypatch.setenv("RUNNINGHUB_BASE_URL", fake.base_url)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    real = _client.build_config  # type: ignore[attr-defined]

    def fast(**options: Any) -> Any:
        if options.get("poll") is None:
            options["poll"] = FAST_POLL
        return real(**options)

    monkeypatch.setattr(_client, "build_config", fast)
    return tmp_path


def _run(source: str) -> dict[str, Any]:
    """Run *source* as a pasted block (top-level await allowed); its namespace."""
    code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))
    else:
        exec(code, namespace)
    return namespace


async def _drive_aiohttp(namespace: dict[str, Any]) -> None:
    app = namespace["app"]
    async with serve_app(app, handler_cancellation=True) as base, ClientSession() as http:
        async with http.post(f"{base}/generate", json={"prompt": "a red kite"}) as answer:
            assert answer.status == 200, await answer.text()
            assert (await answer.json())["urls"]
        async with http.post(f"{base}/runninghub/webhook", data=b"not json") as answer:
            assert answer.status == 400


class _Asgi:
    """Just enough of an ASGI server to drive an app's lifespan and one request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        task = asyncio.ensure_future(
            self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
        )
        await inbox.put({"type": "lifespan.startup"})
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        try:
            yield
        finally:
            await inbox.put({"type": "lifespan.shutdown"})
            assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
            await task

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects
            return {}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def _drive_starlette(namespace: dict[str, Any]) -> None:
    server = _Asgi(namespace["app"])
    async with server.lifespan():
        status, body = await server.post("/generate", json.dumps({"prompt": "a kite"}).encode())
        assert status == 200, body
        assert json.loads(body)["urls"]
        status, _ = await server.post("/runninghub/webhook/", b"not json")
        assert status == 400


class _Chat:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.photos: list[bytes] = []

    async def send(self, text: str) -> None:
        self.texts.append(text)

    async def send_photo(self, data: bytes) -> None:
        self.photos.append(data)


async def _drive_bot(namespace: dict[str, Any]) -> None:
    chat = _Chat()
    async with _client.RunningHub() as client:
        await namespace["on_message"](client, chat, "a lighthouse")
    assert chat.photos
    assert chat.photos[0].startswith(b"\x89PNG")
    assert chat.texts[-1] == "success"


async def _drive_tests(namespace: dict[str, Any]) -> None:
    for name, test in namespace.items():
        if name.startswith("test_") and inspect.iscoroutinefunction(test):
            await test()


# What to do with a block after it ran, by a name it defines.
DRIVERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "on_message": _drive_bot,
    "test_my_thumbnailer": _drive_tests,
}


def _driver(namespace: dict[str, Any]) -> Callable[[dict[str, Any]], Any] | None:
    app = namespace.get("app")
    if isinstance(app, web.Application):
        return _drive_aiohttp
    if app is not None:
        return _drive_starlette
    return next((drive for name, drive in DRIVERS.items() if name in namespace), None)


def _execute(source: str) -> None:
    namespace = _run(source)
    drive = _driver(namespace)
    if drive is not None:
        asyncio.run(drive(namespace))


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
async def test_python_examples_run_against_the_fake(source: str, sandbox: Path) -> None:
    """Every python block runs (and its app or handler is driven) without an error."""
    with anyio.fail_after(60):
        await anyio.to_thread.run_sync(_execute, source)


def test_every_block_is_exercised() -> None:
    """No block only compiles: each runs, and those that define apps or handlers are driven."""
    assert len(BLOCKS) >= 12
    titles = {_title(block) for block in BLOCKS}
    needed = ("In an async web app", "A bot: status updates and bytes", "Scripts and notebooks")
    assert set(needed) <= titles


def _setup_commands() -> Iterator[str]:
    setup = TEXT.split("## Set up", 1)[1].split("\n## ", 1)[0]
    yield from re.findall(r"```bash\n(.*?)\n```", setup, re.DOTALL)


def test_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    """The README keeps two set-up commands; .ci/run runs the same test command."""
    commands = list(_setup_commands())
    assert len(commands) == 2
    assert commands[0].endswith("runninghub-async demo")
    assert commands[1].endswith("python -m pytest")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in ci
    assert os.path.exists(README.parent / "pyproject.toml")
