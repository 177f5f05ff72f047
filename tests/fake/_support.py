"""Small helpers shared by the fake-server tests: plain aiohttp calls, no library client."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import aiohttp

from runninghub_async.testing import FakeRunningHub

T2I = "rhart-image-n-pro/text-to-image"
EDIT = "rhart-image-n-pro/edit"
GOOD: dict[str, Any] = {"prompt": "a red fox in the snow", "resolution": "1k"}


def bearer(key: str) -> dict[str, str]:
    """The v2 auth header for *key*."""
    return {"Authorization": f"Bearer {key}"}


async def post_json(
    http: aiohttp.ClientSession,
    url: str,
    body: object,
    headers: dict[str, str] | None = None,
) -> Any:
    """POST *body* as JSON, assert HTTP 200, return the decoded answer."""
    async with http.post(url, json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def submit(
    http: aiohttp.ClientSession,
    fake: FakeRunningHub,
    body: object | None = None,
    *,
    endpoint: str = T2I,
    key: str | None = None,
) -> Any:
    """Submit *body* (default: a valid nano-pro text-to-image body) and return the answer."""
    url = f"{fake.base_url}/openapi/v2/{endpoint}"
    payload = dict(GOOD) if body is None else body
    return await post_json(http, url, payload, bearer(key or fake.api_key))


async def query(
    http: aiohttp.ClientSession, fake: FakeRunningHub, task_id: str, *, key: str | None = None
) -> Any:
    """Query *task_id* and return the answer."""
    url = f"{fake.base_url}/openapi/v2/query"
    return await post_json(http, url, {"taskId": task_id}, bearer(key or fake.api_key))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split a PNG into (type, data) chunks, checking the signature and every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks = []
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        offset += 12 + length
    return chunks
