"""The ready-to-mount webhook receivers: an aiohttp handler served on 127.0.0.1 and
the plain ASGI app called directly.

Both check the per-task token, ignore forged ids and duplicates with the very
answer they give a taken callback, refuse what is not a TASK_END callback, a
body over the cap and anything but POST, and never leak a traceback.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import anyio
import pytest
from aiohttp import web

from runninghub_async import ClientClosedError, PollPolicy, RunningHub, TaskStatus
from runninghub_async.testing import FakeRunningHub
from runninghub_async.webhooks import (
    MAX_BODY_BYTES,
    TOKEN_PARAM,
    WebhookClient,
    aiohttp_handler,
    asgi_app,
)

from .conftest import FAST_RETRY

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
GOOD: dict[str, Any] = {"prompt": "a red fox", "resolution": "1k"}
PATH = "/runninghub/webhook"
# Checks 30 s apart: anything that ends a wait sooner came through the webhook.
SLOW_POLL = PollPolicy(initial_delay=30.0, min_interval=30.0, max_interval=60.0)
OK = {"ok": True}
FORGED_ID = "1999999999999999999"


class Recorder:
    """Passes callbacks to the client under test and keeps each answer it gave."""

    def __init__(self) -> None:
        self.client: WebhookClient | None = None
        self.answers: list[bool] = []

    def handle_webhook(
        self, payload: Mapping[str, Any] | str | bytes, *, token: str | None = None
    ) -> bool:
        assert self.client is not None
        taken = self.client.handle_webhook(payload, token=token)
        self.answers.append(taken)
        return taken


class Broken:
    """A client whose handle_webhook fails in an unexpected way."""

    def handle_webhook(
        self, payload: Mapping[str, Any] | str | bytes, *, token: str | None = None
    ) -> bool:
        raise RuntimeError("boom: secret internals")


class Closed:
    """A client that has been closed."""

    def handle_webhook(
        self, payload: Mapping[str, Any] | str | bytes, *, token: str | None = None
    ) -> bool:
        raise ClientClosedError("the client is closed")


Answer = tuple[int, dict[str, str], bytes]


class Receiver:
    """A mounted receiver and a way to POST to it; ``url`` is what the client announces."""

    def __init__(self, kind: str, url: str, recorder: Recorder) -> None:
        self.kind = kind
        self.url = url
        self.recorder = recorder
        self._http: aiohttp.ClientSession | None = None
        self._app: Any = None

    async def request(
        self,
        body: bytes,
        *,
        query: str = "",
        method: str = "POST",
        chunks: list[bytes] | None = None,
    ) -> Answer:
        """Send *body* (or *chunks*, without a content-length) with ``?query``."""
        if self._http is not None:
            return await self._aiohttp_request(body, query, method, chunks)
        return await asgi_request(self._app, body, query=query, method=method, chunks=chunks)

    async def _aiohttp_request(
        self, body: bytes, query: str, method: str, chunks: list[bytes] | None
    ) -> Answer:
        assert self._http is not None

        async def stream() -> AsyncIterator[bytes]:
            for chunk in chunks or ():
                yield chunk

        data: Any = stream() if chunks is not None else body
        url = f"{self.url}?{query}" if query else self.url
        async with self._http.request(method, url, data=data) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, await response.read()

    async def post_callback(self, task_id: str, token: str | None) -> Answer:
        """POST the TASK_END callback RunningHub would send for *task_id*."""
        query = f"{TOKEN_PARAM}={token}" if token is not None else ""
        return await self.request(callback(task_id), query=query)

    def open_client(self, fake: FakeRunningHub, **overrides: Any) -> RunningHub:
        """A client announcing this receiver, whose callbacks go to ``recorder``."""
        options: dict[str, Any] = {
            "api_key": fake.api_key,
            "base_url": fake.base_url,
            "poll": SLOW_POLL,
            "retry": FAST_RETRY,
            "webhook_url": self.url,
        }
        options.update(overrides)
        client = RunningHub(**options)
        self.recorder.client = client
        return client


def callback(task_id: str) -> bytes:
    event = {"code": 0, "msg": "success", "data": [{"fileUrl": "https://x/y.png"}]}
    return json.dumps(
        {"event": "TASK_END", "taskId": task_id, "eventData": json.dumps(event)}
    ).encode()


async def asgi_request(
    app: Any,
    body: bytes,
    *,
    query: str = "",
    method: str = "POST",
    chunks: list[bytes] | None = None,
    disconnect: bool = False,
) -> Answer:
    """Call an ASGI app as a server would, and gather its answer."""
    headers = [] if chunks is not None else [(b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
    }
    parts = chunks if chunks is not None else [body]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    if disconnect:
        messages = [{"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if not sent:
        return 0, {}, b""
    start, *rest = sent
    assert start["type"] == "http.response.start"
    assert [m["type"] for m in rest] == ["http.response.body"]
    head = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], head, rest[0]["body"]


@asynccontextmanager
async def aiohttp_receiver(recorder: Recorder, **options: Any) -> AsyncIterator[Receiver]:
    # The socket first: the client must know the URL before the handler knows the client.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = web.Application()
    app.router.add_route("*", PATH, aiohttp_handler(recorder, **options))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        receiver = Receiver("aiohttp", f"http://127.0.0.1:{port}{PATH}", recorder)
        async with aiohttp.ClientSession() as http:
            receiver._http = http
            yield receiver
    finally:
        await runner.cleanup()


@asynccontextmanager
async def asgi_receiver(recorder: Recorder, **options: Any) -> AsyncIterator[Receiver]:
    # Nothing listens there: callbacks in these tests are handed to the app directly.
    receiver = Receiver("asgi", f"http://127.0.0.1:9{PATH}", recorder)
    receiver._app = asgi_app(recorder, **options)
    yield receiver


@asynccontextmanager
async def mounted(kind: str, target: Any = None, **options: Any) -> AsyncIterator[Receiver]:
    recorder = Recorder()
    recorder.client = target
    opener = aiohttp_receiver if kind == "aiohttp" else asgi_receiver
    async with opener(recorder, **options) as receiver:
        yield receiver


KINDS = pytest.mark.parametrize("kind", ["aiohttp", "asgi"])


def token_of(fake: FakeRunningHub, task_id: str) -> str:
    url = fake.tasks[task_id].webhook_url
    assert url is not None
    (token,) = parse_qs(urlsplit(url).query)[TOKEN_PARAM]
    return token


async def test_a_delivered_callback_resolves_the_job_with_one_query() -> None:
    """End to end: the fake POSTs TASK_END to the mounted aiohttp handler; the wait ends."""
    async with mounted("aiohttp") as receiver, FakeRunningHub(duration=None) as fake:
        async with receiver.open_client(fake) as client:
            job = await client.submit(T2I, GOOD)
            assert (fake.tasks[job.task_id].webhook_url or "").startswith(
                f"{receiver.url}?{TOKEN_PARAM}="
            )
            fake.finish(job.task_id)
            with anyio.fail_after(5):
                result = await job.wait()
        assert result.status is TaskStatus.SUCCESS
        assert receiver.recorder.answers == [True]
        assert fake.stats.webhook_deliveries == 1
        assert fake.tasks[job.task_id].query_count == 1  # the confirming query, no polling


async def test_a_callback_handed_to_the_asgi_app_resolves_the_job() -> None:
    """The ASGI app takes a callback sent in several body chunks and the wait ends."""
    async with (
        mounted("asgi") as receiver,
        FakeRunningHub(duration=None, webhook_attempts=1) as fake,
    ):
        async with receiver.open_client(fake) as client:
            job = await client.submit(T2I, GOOD)
            fake.finish(job.task_id)
            body = callback(job.task_id)
            status, _, answer = await receiver.request(
                body,
                query=f"{TOKEN_PARAM}={token_of(fake, job.task_id)}",
                chunks=[body[:10], body[10:30], body[30:]],
            )
            assert (status, json.loads(answer)) == (200, OK)
            with anyio.fail_after(5):
                result = await job.wait()
        assert result.status is TaskStatus.SUCCESS
        assert receiver.recorder.answers == [True]
        assert fake.tasks[job.task_id].query_count == 1


@KINDS
async def test_forged_wrong_token_and_duplicate_get_the_same_answer(kind: str) -> None:
    """Ignored callbacks answer exactly like a taken one; only the first valid one is taken."""
    async with mounted(kind) as receiver, FakeRunningHub(duration=None) as fake:
        async with receiver.open_client(fake) as client:
            job = await client.submit(T2I, GOOD)
            token = token_of(fake, job.task_id)
            answers = [
                await receiver.post_callback(FORGED_ID, token),  # unknown task
                await receiver.post_callback(job.task_id, "not-the-token"),
                await receiver.post_callback(job.task_id, None),
                await receiver.post_callback(job.task_id, "%C3%A9t%C3%A9"),  # non-ASCII
                await receiver.post_callback(job.task_id, token),  # the real one
                await receiver.post_callback(job.task_id, token),  # again
            ]
            for status, headers, body in answers:
                assert status == 200
                assert headers["content-type"].startswith("application/json")
                assert json.loads(body) == OK
            assert len({body for _, _, body in answers}) == 1
            assert receiver.recorder.answers == [False, False, False, False, True, False]


@KINDS
@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"event": "TASK_START", "taskId": "1999999999999999999"}',
        b'{"event": "TASK_END", "taskId": "abc"}',
        b"",
    ],
)
async def test_what_is_not_a_task_end_callback_gets_400(kind: str, body: bytes) -> None:
    """A malformed body is refused; the client never takes it."""
    async with mounted(kind) as receiver, FakeRunningHub(duration=None) as fake:
        async with receiver.open_client(fake):
            status, _, answer = await receiver.request(body, query=f"{TOKEN_PARAM}=x")
    assert status == 400
    assert json.loads(answer)["ok"] is False
    assert receiver.recorder.answers == []


@KINDS
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_anything_but_post_gets_405(kind: str, method: str) -> None:
    """Only POST is served, and the answer says so."""
    async with mounted(kind, Broken()) as receiver:
        status, headers, _ = await receiver.request(b"", method=method)
    assert status == 405
    assert headers["allow"] == "POST"


@KINDS
async def test_a_body_over_the_cap_gets_413(kind: str) -> None:
    """Over the cap is refused, announced (content-length) or streamed; at the cap is read."""
    async with mounted(kind, Broken(), max_body=1024) as receiver:
        announced = await receiver.request(b"x" * 1025)
        streamed = await receiver.request(b"", chunks=[b"x" * 600, b"x" * 600])
        at_cap = await receiver.request(b"x" * 1024)
    assert announced[0] == 413
    assert streamed[0] == 413
    assert at_cap[0] == 500  # read and handed on: Broken fails it
    assert MAX_BODY_BYTES == 1 << 20


@KINDS
async def test_a_closed_client_gets_503_so_the_callback_is_retried(kind: str) -> None:
    """A client shutting down refuses callbacks with 503."""
    async with mounted(kind, Closed()) as receiver:
        status, _, answer = await receiver.post_callback(FORGED_ID, "t")
    assert status == 503
    assert json.loads(answer)["ok"] is False


@KINDS
async def test_an_unexpected_error_is_logged_and_answered_without_details(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing client means 500 with a bare JSON body; the traceback goes to the log only."""
    with caplog.at_level(logging.ERROR, logger="runninghub_async"):
        async with mounted(kind, Broken()) as receiver:
            status, _, answer = await receiver.post_callback(FORGED_ID, "t")
    assert status == 500
    assert json.loads(answer) == {"ok": False, "error": "internal error"}
    assert b"boom" not in answer
    assert any("boom" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


async def test_a_closed_real_client_gets_503() -> None:
    """The real client, closed, makes the receiver answer 503."""
    async with mounted("asgi") as receiver, FakeRunningHub(duration=None) as fake:
        async with receiver.open_client(fake):
            pass
        status, _, _ = await receiver.post_callback(FORGED_ID, "t")
    assert status == 503


async def test_asgi_a_caller_that_went_away_gets_nothing() -> None:
    """On http.disconnect the app returns without answering."""
    app = asgi_app(Broken())
    assert await asgi_request(app, b"", disconnect=True) == (0, {}, b"")


async def test_asgi_lifespan_starts_and_stops() -> None:
    """Served on its own, the app completes the lifespan protocol."""
    app = asgi_app(Broken())
    inbox: list[dict[str, Any]] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_the_aiohttp_receiver_answers_408_to_a_stalled_body_and_ignores_a_hang_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sender that stalls mid-body gets 408 (no connection held for ever); one that hangs
    up mid-body costs no error log."""
    caplog.set_level(logging.DEBUG)
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n{{".encode()
    async with mounted("aiohttp", Closed(), body_timeout=0.2) as receiver:
        port = int(urlsplit(receiver.url).port or 0)
        with anyio.fail_after(5):
            async with await anyio.connect_tcp("127.0.0.1", port) as stalled:
                await stalled.send(head)
                answer = await stalled.receive()
            assert answer.startswith(b"HTTP/1.1 408")
            async with await anyio.connect_tcp("127.0.0.1", port) as gone:
                await gone.send(head)
    # The receiver's server has shut down: every handler has ended and logged.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_the_asgi_receiver_answers_408_to_a_stalled_body() -> None:
    never = anyio.Event()
    sent: list[Any] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"{", "more_body": True}
        await never.wait()
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "query_string": b"", "headers": []}
    with anyio.fail_after(5):
        await asgi_app(Closed(), body_timeout=0.2)(scope, receive, send)
    assert sent[0]["status"] == 408


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "10", True])
def test_a_bad_body_timeout_is_refused_when_the_receiver_is_made(bad: Any) -> None:
    for make in (aiohttp_handler, asgi_app):
        with pytest.raises(ValueError, match="body_timeout"):
            make(Closed(), body_timeout=bad)
