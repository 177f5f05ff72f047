"""Plain values the transport takes and gives, and a capped decompressor (no aiohttp here).

`Answer` is one API answer read whole, `FormFile` a multipart upload to stream,
`FileStream` a download being streamed; `Inflater` undoes a Content-Encoding
chunk by chunk and stops at the size cap, so a gzip bomb costs at most the cap.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Final, NamedTuple

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
    """A result file being downloaded: its declared type and size, and its chunks.

    *length* is the size the file will have, when the host declared it (None when
    it did not, or sent the file compressed: then only the compressed size is known).
    """

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


# The most one decompress call yields: the cap may exceed what zlib takes as a size.
_STEP: Final = 1 << 24


class Inflater:
    """Decompresses an answer chunk by chunk, never producing more than *cap* bytes.

    ``deflate`` is taken both as RFC 1950 (zlib-wrapped, as the standard says)
    and as the raw RFC 1951 stream some servers send instead, told apart by
    the first two bytes as browsers and aiohttp do.
    """

    def __init__(self, encoding: str, cap: int) -> None:
        self._cap = cap
        self._size = 0
        self._parts: list[bytes] = []
        coding = encoding.strip().lower()
        wbits = {"gzip": 31, "x-gzip": 31, "deflate": 15}.get(coding)
        if coding not in ("", "identity") and wbits is None:
            raise ProtocolError(f"unsupported Content-Encoding {encoding!r}")
        self._zlib = zlib.decompressobj(wbits) if wbits is not None else None
        # Which deflate it is shows only in the first bytes: decided there.
        self._sniff = coding == "deflate"
        self._head = b""

    def feed(self, chunk: bytes) -> None:
        """Decompress *chunk* (a piece of the body as it came).

        Raises:
            ProtocolError: the body is corrupt, or decompresses to more than the cap.
        """
        if self._zlib is None:
            self._add(chunk)
            return
        data = chunk
        if self._sniff:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return
            self._sniff, self._head = False, b""
            if not _zlib_header(data):
                self._zlib = zlib.decompressobj(-15)
        while True:
            # Bounded per call (a C size, whatever the cap) and by what the cap still allows.
            room = min(self._cap - self._size + 1, _STEP)
            try:
                out = self._zlib.decompress(data, room)
            except zlib.error:
                raise ProtocolError("the answer's compressed body is corrupt") from None
            self._add(out)
            data = self._zlib.unconsumed_tail
            # A full *room* may leave output pending in zlib with no input left over.
            if not data and len(out) < room:
                return

    def _add(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._cap:
            raise ProtocolError(f"the answer is larger than {self._cap} bytes")
        self._parts.append(data)

    def result(self) -> bytes:
        """Everything decompressed so far, joined."""
        if self._head:  # a deflate body of one byte: not a zlib stream, so no body at all
            raise ProtocolError("the answer's compressed body is corrupt")
        return b"".join(self._parts)


def _zlib_header(head: bytes) -> bool:
    """Whether *head* starts an RFC 1950 stream: method 8 and a valid header check."""
    return head[0] & 0x0F == 8 and head[0] >> 4 <= 7 and (head[0] << 8 | head[1]) % 31 == 0
