"""Closing while calls are on the wire: each ends at once with ClientClosedError, never retried."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from runninghub_async import ClientClosedError, Output, RetryPolicy, RunningHub, Timeouts
from runninghub_async._payloads import FormFile
from runninghub_async._transport import Transport

from .hostile import KEY, client_for, listing, serve_app

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
# Long enough that only the close can end what these tests start.
SLOW = Timeouts(connect=5.0, read=60.0, total=60.0, download_total=60.0)


class Stall:
    """A server whose every route answers only once the client hangs up.

    File routes send a PNG's first bytes, then stall mid-body; API routes never
    answer.  `arrived` is set once *expected* requests have come in.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.paths: list[str] = []
        self.arrived = anyio.Event()
        self.app = web.Application()
        self.app.router.add_get("/files/{name}", self.file)
        self.app.router.add_route("*", "/{tail:.*}", self.api)

    def _hit(self, request: web.Request) -> None:
        self.paths.append(request.path)
        if len(self.paths) >= self.expected:
            self.arrived.set()

    async def api(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self._hit(request)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def file(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = 10 * len(PNG)
        await response.prepare(request)
        await response.write(PNG)
        self._hit(request)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def _close_during(
    calls: dict[str, Callable[[RunningHub], Awaitable[object]]], tmp_path: Path
) -> tuple[dict[str, BaseException | object], list[str]]:
    """Start *calls* (in tasks outside the client), close it once all are on the wire."""
    stall = Stall(len(calls))
    outcomes: dict[str, BaseException | object] = {}
    async with serve_app(stall.app, handler_cancellation=True, shutdown_timeout=0.1) as base:
        with anyio.fail_after(5):  # without the fix these hang for SLOW's minute
            async with anyio.create_task_group() as tg:
                client = client_for(base, timeouts=SLOW)

                async def call(name: str, fn: Callable[[RunningHub], Awaitable[object]]) -> None:
                    try:
                        outcomes[name] = await fn(client)
                    except Exception as exc:
                        outcomes[name] = exc

                async with client:
                    for name, fn in calls.items():
                        tg.start_soon(call, name, fn)
                    await stall.arrived.wait()
    return outcomes, stall.paths


async def test_reads_and_downloads_on_the_wire_end_with_client_closed(tmp_path: Path) -> None:
    """read, download and stream stalled mid-file: the close ends each at once, no .part left."""

    def output(base: str, name: str) -> Output:
        return Output(url=f"{base}/files/{name}", output_type="png")

    async def streamed(client: RunningHub) -> object:
        return [chunk async for chunk in client.stream(output(client.base_url, "c.png"))]

    outcomes, paths = await _close_during(
        {
            "read": lambda c: c.read(output(c.base_url, "a.png")),
            "download": lambda c: c.download(output(c.base_url, "b.png"), tmp_path),
            "stream": streamed,
        },
        tmp_path,
    )
    assert sorted(paths) == ["/files/a.png", "/files/b.png", "/files/c.png"]
    for name, outcome in outcomes.items():
        assert isinstance(outcome, ClientClosedError), (name, outcome)
    assert await listing(tmp_path) == []


async def test_api_calls_on_the_wire_end_with_client_closed_and_are_not_retried(
    tmp_path: Path,
) -> None:
    """query, upload, account, queue_status, price, request: ClientClosedError, each sent once."""
    params = {"prompt": "closing", "resolution": "1k"}
    outcomes, paths = await _close_during(
        {
            "query": lambda c: c.query("1001"),
            "upload": lambda c: c.upload(PNG),
            "account": lambda c: c.account(),
            "queue_status": lambda c: c.queue_status(),
            "price": lambda c: c.price("rhart-image-n-pro/text-to-image", params),
            "request": lambda c: c.request("GET", "/openapi/v2/api-key/list"),
        },
        tmp_path,
    )
    for name, outcome in outcomes.items():
        assert isinstance(outcome, ClientClosedError), (name, outcome)
    assert len(paths) == len(set(paths)) == 6  # none was sent again on the closing session


async def test_a_cancel_from_outside_is_still_a_cancel() -> None:
    """Cancelling a stalled call is a cancel (the caller's scope catches it), not a close."""
    stall = Stall(1)
    async with serve_app(stall.app, handler_cancellation=True, shutdown_timeout=0.1) as base:
        async with client_for(base, timeouts=SLOW) as client, anyio.create_task_group() as tg:
            with anyio.CancelScope() as outer:

                async def cancel_once_sent() -> None:
                    await stall.arrived.wait()
                    outer.cancel()

                tg.start_soon(cancel_once_sent)
                await client.read(Output(url=f"{base}/files/x.png", output_type="png"))
            assert outer.cancelled_caught


def _transport(base_url: str) -> Transport:
    async def pace() -> None:
        return None

    return Transport(
        base_url=base_url,
        api_key=KEY,
        pace=pace,
        retry=RetryPolicy(attempts=1),
        timeouts=SLOW,
        max_connections=4,
        rng=random.Random(1),
    )


async def test_a_call_after_the_transport_closed_is_client_closed_not_runtime_error() -> None:
    """Exchanges, uploads and downloads that start after the close raise ClientClosedError."""
    transport = _transport("http://127.0.0.1:9")
    await transport.aclose()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"x"

    form = FormFile("a.png", 1, chunks)
    with pytest.raises(ClientClosedError):
        await transport.exchange("POST", "/openapi/v2/query", body=b"{}")
    with pytest.raises(ClientClosedError):
        await transport.exchange("POST", "/openapi/v2/media/upload/binary", form=form)
    with pytest.raises(ClientClosedError):
        await transport.retrying(
            lambda: transport.exchange("GET", "/openapi/v2/queue/status"), "queue status"
        )
    with pytest.raises(ClientClosedError):
        await transport.put_file("http://127.0.0.1:9/put", chunks, 1)
    with pytest.raises(ClientClosedError):
        async with transport.stream("http://127.0.0.1:9/a.png"):
            pass
    assert transport.closed
    await transport.aclose()  # idempotent
