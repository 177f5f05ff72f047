"""Result files: real PNGs, served without auth, counted."""

from __future__ import annotations

import struct
import zlib

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub

from ._support import png_chunks, query, submit

pytestmark = pytest.mark.anyio


async def _finished_result_url(http: aiohttp.ClientSession, fake: FakeRunningHub) -> str:
    task_id = (await submit(http, fake))["taskId"]
    fake.finish(task_id)
    url: str = (await query(http, fake, task_id))["results"][0]["url"]
    return url


async def test_result_url_serves_a_valid_png() -> None:
    """The result URL serves a decodable 64x64 RGB PNG with image/png content type."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        url = await _finished_result_url(http, fake)
        async with http.get(url) as response:
            assert response.status == 200
            assert response.content_type == "image/png"
            data = await response.read()
        assert fake.stats.downloads == 1
        assert fake.stats.file_requests_with_auth == 0
    chunks = png_chunks(data)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR"
    assert kinds[-1] == b"IEND"
    assert b"IDAT" in kinds
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour) == (64, 64, 8, 2)
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + width * 3)


async def test_different_tasks_get_different_images() -> None:
    """Two tasks' outputs differ, and one output is the same on every download."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        first = await _finished_result_url(http, fake)
        second = await _finished_result_url(http, fake)
        blobs = []
        for url in (first, second, first):
            async with http.get(url) as response:
                blobs.append(await response.read())
    assert blobs[0] != blobs[1]
    assert blobs[0] == blobs[2]


async def test_file_requests_carrying_auth_are_counted() -> None:
    """A download that sends an Authorization header still works and is counted."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        url = await _finished_result_url(http, fake)
        headers = {"Authorization": f"Bearer {fake.api_key}"}
        async with http.get(url, headers=headers) as response:
            assert response.status == 200
        async with http.get(url) as response:
            assert response.status == 200
    assert fake.stats.file_requests_with_auth == 1
    assert fake.stats.downloads == 2


async def test_unknown_or_unfinished_outputs_are_404() -> None:
    """Outputs of unknown or unfinished tasks, or beyond the output count, are 404."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        running = (await submit(http, fake))["taskId"]
        url = await _finished_result_url(http, fake)
        base = fake.base_url
        for bad in (
            f"{base}/files/outputs/{running}/0.png",
            f"{base}/files/outputs/1234567890123456789/0.png",
            url.replace("/0.png", "/1.png"),
            url.replace("/0.png", "/0.jpg"),
            f"{base}/files/uploads/openapi/nothing.png",
        ):
            async with http.get(bad) as response:
                assert response.status == 404, bad
    assert fake.stats.downloads == 0
