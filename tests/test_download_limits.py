"""Result files are bounded and checked; compressed and echoing API answers are read right."""

from __future__ import annotations

import json
import traceback
import zlib
from pathlib import Path

import pytest
from aiohttp import web

from runninghub_async import (
    AuthenticationError,
    JobResult,
    Output,
    ProtocolError,
    TaskStatus,
    Timeouts,
)
from runninghub_async._errors import UnexpectedContentError
from runninghub_async._payloads import Inflater

from .hostile import Recorder, client_for, listing, serve

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
MIB = 1024 * 1024


def _compressed(data: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return packer.compress(data) + packer.flush()


async def test_a_compression_bomb_stops_at_max_download_bytes(tmp_path: Path) -> None:
    """8 MiB of PNG-looking zeros in a few KB of gzip: refused at the bound, nothing kept."""
    bomb = _compressed(PNG + b"\0" * (8 * MIB), 31)
    assert len(bomb) < 64 * 1024

    async def serve_bomb(request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip", "Content-Type": "image/png"}
        return web.Response(body=bomb, headers=headers)

    async def serve_big(request: web.Request) -> web.Response:
        return web.Response(body=PNG + b"\0" * (2 * MIB), content_type="image/png")

    routes = {("GET", "/bomb.png"): serve_bomb, ("GET", "/big.png"): serve_big}
    async with serve(routes) as base:
        async with client_for(base, timeouts=Timeouts(max_download_bytes=MIB)) as client:
            for name in ("bomb.png", "big.png"):  # inflated, and declared up front
                output = Output(url=f"{base}/{name}", output_type="png")
                with pytest.raises(ProtocolError, match="max_download_bytes"):
                    await client.download(output, tmp_path)
                with pytest.raises(ProtocolError, match="max_download_bytes"):
                    await client.read(output, max_bytes=64 * MIB)
                with pytest.raises(ProtocolError, match="max_download_bytes"):
                    async for _ in client.stream(output):
                        pass
    assert await listing(tmp_path) == []


def test_the_download_bound_has_a_documented_default() -> None:
    """2 GiB unless set; None lifts it; nonsense is refused when the Timeouts is built."""
    assert Timeouts().max_download_bytes == 2048 * MIB
    assert Timeouts(max_download_bytes=None).max_download_bytes is None
    with pytest.raises(ValueError, match="max_download_bytes"):
        Timeouts(max_download_bytes=0)
    with pytest.raises(TypeError, match="max_download_bytes"):
        Timeouts(max_download_bytes=1.5)  # type: ignore[arg-type]


async def test_an_empty_file_is_no_result(tmp_path: Path) -> None:
    """An empty body is an UnexpectedContentError for download, read and stream; no file."""

    async def empty(request: web.Request) -> web.Response:
        return web.Response(body=b"", content_type="image/png")

    async with serve({("GET", "/{name}"): empty}) as base:
        async with client_for(base) as client:
            for output in (
                Output(url=f"{base}/empty.png", output_type="png"),
                Output(url=f"{base}/notes.txt", output_type="txt"),  # unchecked kinds too
            ):
                with pytest.raises(UnexpectedContentError, match="empty"):
                    await client.download(output, tmp_path)
                with pytest.raises(UnexpectedContentError, match="empty"):
                    await client.read(output)
                with pytest.raises(UnexpectedContentError, match="empty"):
                    async for _ in client.stream(output):
                        pass
    assert await listing(tmp_path) == []


async def test_the_output_type_decides_the_check_whatever_the_url_says(tmp_path: Path) -> None:
    """An HTML page at .../page.exe claimed as png is refused; a real PNG there is kept.

    A vague type (``image``) does not waive the check a ``.png`` URL asks for.
    """

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>login</html>", content_type="text/html")

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    routes = {("GET", "/page.{ext}"): page, ("GET", "/image.exe"): image}
    async with serve(routes) as base:
        async with client_for(base) as client:
            for html in (
                Output(url=f"{base}/page.exe", output_type="png"),
                Output(url=f"{base}/page.png", output_type="image"),
            ):
                with pytest.raises(UnexpectedContentError, match="should be png"):
                    await client.download(html, tmp_path)
                with pytest.raises(UnexpectedContentError, match="should be png"):
                    await client.read(html)
                result = JobResult("7", TaskStatus.SUCCESS, (html,))
                with pytest.raises(UnexpectedContentError, match="should be png"):
                    await client.download(result, tmp_path)
            assert await listing(tmp_path) == []
            (path,) = await client.download(
                Output(url=f"{base}/image.exe", output_type="png"), tmp_path
            )
    assert path.read_bytes() == PNG


@pytest.mark.parametrize(
    ("max_bytes", "error"),
    [(-1, ValueError), (0, ValueError), ("10", TypeError), (True, TypeError), (1.5, TypeError)],
)
async def test_a_bad_max_bytes_fails_before_any_request(
    max_bytes: object, error: type[Exception]
) -> None:
    """read() and to_image() check max_bytes before fetching anything."""
    recorder = Recorder()

    async def image(request: web.Request) -> web.Response:
        recorder.hit(request)
        return web.Response(body=PNG, content_type="image/png")

    async with serve({("GET", "/a.png"): image}) as base:
        async with client_for(base) as client:
            output = Output(url=f"{base}/a.png", output_type="png")
            with pytest.raises(error, match="max_bytes"):
                await client.read(output, max_bytes=max_bytes)  # type: ignore[arg-type]
            with pytest.raises(error, match="max_bytes"):
                await client.to_image(output, max_bytes=max_bytes)  # type: ignore[arg-type]
    assert recorder.calls == {}


async def test_read_refuses_a_file_over_max_bytes() -> None:
    """read(max_bytes=) refuses a larger file (by its declared size) and takes one that fits."""

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async with serve({("GET", "/a.png"): image}) as base:
        async with client_for(base) as client:
            output = Output(url=f"{base}/a.png", output_type="png")
            with pytest.raises(ValueError, match="max_bytes=8"):
                await client.read(output, max_bytes=8)
            assert await client.read(output, max_bytes=len(PNG)) == PNG


@pytest.mark.parametrize("wbits", [15, -15], ids=["zlib-deflate", "raw-deflate"])
async def test_deflate_answers_are_read_with_or_without_the_zlib_header(wbits: int) -> None:
    """``Content-Encoding: deflate`` as RFC 1950 or as raw RFC 1951: both are understood."""
    body = {"taskId": "1001", "status": "RUNNING", "errorCode": "", "errorMessage": ""}
    packed = _compressed(json.dumps(body).encode(), wbits)

    async def query(request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "deflate", "Content-Type": "application/json"}
        return web.Response(body=packed, headers=headers)

    async with serve({("POST", "/openapi/v2/query"): query}) as base:
        async with client_for(base) as client:
            snapshot = await client.query("1001")
    assert snapshot.task_id == "1001"


def test_the_inflater_splits_its_work_and_refuses_garbage() -> None:
    """Fed a byte at a time, raw or wrapped; a cap beyond a C size; corrupt data refused."""
    data = b'{"ok": true}' * 100
    for wbits in (15, -15):
        inflater = Inflater("deflate", 1 << 63)
        for byte in _compressed(data, wbits):
            inflater.feed(bytes([byte]))
        assert inflater.result() == data
    big = b"\0" * (16 * MIB + 3)  # more than one decompress call yields
    inflater = Inflater("gzip", 1 << 63)
    inflater.feed(_compressed(big, 31))
    assert inflater.result() == big
    inflater = Inflater("deflate", 1 << 20)
    with pytest.raises(ProtocolError, match="corrupt"):
        inflater.feed(b"\x78\x9c" + b"\xff" * 32)
    inflater = Inflater("deflate", 100)
    with pytest.raises(ProtocolError, match="larger than 100"):
        inflater.feed(_compressed(data, -15))


@pytest.mark.parametrize(
    "spelling",
    [
        lambda key: key.replace("/", "\\/"),
        lambda key: "".join(f"\\u{ord(c):04X}" if c in "ab/" else c for c in key),
    ],
    ids=["slash-escaped", "unicode-escaped"],
)
async def test_a_key_echoed_with_json_escapes_is_scrubbed(spelling: object) -> None:
    """A key with '/' echoed as ``\\/`` (or ``\\uXXXX``) never reaches an exception's text."""
    key = "sk-abc/def-123456"
    echoed = spelling(key)  # type: ignore[operator]

    async def refuse(request: web.Request) -> web.Response:
        text = (
            '{"taskId":"","status":"","errorCode":"1002",'
            f'"errorMessage":"invalid apiKey {echoed}"}}'
        )
        return web.Response(text=text, content_type="application/json")

    async with serve({("POST", "/openapi/v2/query"): refuse}) as base:
        async with client_for(base, api_key=key) as client:
            with pytest.raises(AuthenticationError) as refused:
                await client.query("1001")
    text = "".join(traceback.format_exception(refused.value)) + repr(vars(refused.value))
    assert key not in text
    assert "invalid apiKey ***" in str(refused.value)
