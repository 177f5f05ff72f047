"""Plain values the transport takes and gives, and a capped decompressor (no aiohttp here).

`Answer` is one API answer read whole, `FormFile` a multipart upload to stream,
`FileStream` a download being streamed; `Inflater` undoes a Content-Encoding
chunk by chunk and stops at the size cap, so a gzip bomb costs at most the cap.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import NamedTuple

import attrs

from ._errors import ProtocolError

__all__ = ["Answer", "FileStream", "FormFile", "Inflater", "retry_after_seconds"]


class Answer(NamedTuple):
    """One HTTP answer of the API host, read whole (within the size cap).

    A named tuple: one is made per request, and it is only ever read.
    """

    status: int
    reason: str
    body: bytes
    retry_after: float | None


@attrs.frozen
class FormFile:
    """A ``multipart/form-data`` body with one streamed file part and plain fields.

    *chunks* makes a fresh iterator over the content for every attempt.
    """

    filename: str
    size: int
    chunks: Callable[[], AsyncIterator[bytes]]
    field: str = "file"
    fields: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class FileStream:
    """A result file being downloaded: its declared type and size, and its chunks."""

    content_type: str
    length: int | None
    chunks: AsyncIterator[bytes]




def retry_after_seconds(value: str) -> float | None:
    """A ``Retry-After`` header's seconds, or None when unusable."""
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from APIs, and the default pause covers it
    return seconds if 0 <= seconds < 3600 else None


class Inflater:
    """Decompresses an answer chunk by chunk, never producing more than *cap* bytes."""

    def __init__(self, encoding: str, cap: int) -> None:
        self._cap = cap
        self._size = 0
        self._parts: list[bytes] = []
        wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15}.get(encoding.strip().lower())
        if encoding.strip().lower() not in ("", "identity") and wbits is None:
            raise ProtocolError(f"unsupported Content-Encoding {encoding!r}")
        self._zlib = zlib.decompressobj(wbits) if wbits is not None else None

    def feed(self, chunk: bytes) -> None:
        if self._zlib is None:
            self._add(chunk)
            return
        data = chunk
        while data:
            try:
                out = self._zlib.decompress(data, self._cap - self._size + 1)
            except zlib.error:
                raise ProtocolError("the answer's compressed body is corrupt") from None
            self._add(out)
            data = self._zlib.unconsumed_tail

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._cap:
            raise ProtocolError(f"the answer is larger than {self._cap} bytes")
        self._parts.append(data)

    def result(self) -> bytes:
        return b"".join(self._parts)
