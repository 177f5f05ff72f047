"""Small, valid PNG images for the fake's result files, made with zlib alone."""

from __future__ import annotations

import hashlib
import struct
import zlib

__all__ = ["PNG_SIGNATURE", "render_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def render_png(key: str, *, size: int = 64) -> bytes:
    """A *size* x *size* 8-bit RGB PNG whose colours derive from *key*.

    The same key always gives the same bytes, and different keys (task id, output
    index, prompt) give visibly different images, so a test can tell outputs apart.
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    top, bottom = digest[0:3], digest[3:6]
    rows = []
    for y in range(size):
        # A vertical gradient between two key-derived colours: more than a flat
        # fill, still tiny once deflated.
        pixel = bytes(
            (top[c] * (size - 1 - y) + bottom[c] * y) // max(size - 1, 1) for c in range(3)
        )
        rows.append(b"\x00" + pixel * size)  # filter type 0 per scanline
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + _chunk(b"IEND", b"")
    )
