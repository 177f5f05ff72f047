"""The fake's result files: one small, valid file of the kind each model makes.

Images are PNGs, videos minimal ISO-BMFF (MP4) files, audio a short WAV of
silence, text a UTF-8 ``.txt`` (also given inline as the result's ``text``), and
3D models binary glTF (GLB).  Every file derives from a key (task id, output
index, prompt), so the same task always serves the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import wave
from collections.abc import Mapping

from .._catalog import lookup
from ._png import render_png

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "extension_for",
    "render_file",
    "render_glb",
    "render_mp4",
    "render_text",
    "render_wav",
]

EXTENSIONS: Mapping[str, str] = {
    "image": "png",
    "video": "mp4",
    "audio": "wav",
    "text": "txt",
    "3d": "glb",
}
"""The file extension (RunningHub's ``outputType``) of each model output type."""

CONTENT_TYPES: Mapping[str, str] = {
    "png": "image/png",
    "mp4": "video/mp4",
    "wav": "audio/wav",
    "txt": "text/plain",
    "glb": "model/gltf-binary",
}
"""The Content-Type each output file is served with."""


def extension_for(endpoint: str) -> str:
    """The output extension of *endpoint*: by its catalogued output type, else ``png``.

    AI-app and workflow runs are not catalogued; they make images here.
    """
    spec = lookup(endpoint)
    return EXTENSIONS.get(spec.output_type if spec is not None else "image", "png")


def render_file(ext: str, key: str) -> bytes:
    """The bytes of an output file of kind *ext* for *key*.

    Raises:
        KeyError: *ext* is not one of `CONTENT_TYPES`.
    """
    if ext == "png":
        return render_png(key)
    if ext == "mp4":
        return render_mp4(key)
    if ext == "wav":
        return render_wav(key)
    if ext == "txt":
        return render_text(key).encode("utf-8")
    if ext == "glb":
        return render_glb(key)
    raise KeyError(ext)


def render_text(key: str) -> str:
    """The text a text model "answers" for *key*: short, and different per key."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return f"fake answer {digest}"


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def render_mp4(key: str, *, duration_ms: int = 1000) -> bytes:
    """A minimal ISO-BMFF (MP4) file: ``ftyp``, a ``moov`` with its ``mvhd``, an ``mdat``.

    It has no tracks: players open it as a valid, empty movie of *duration_ms*.
    The ``mdat`` carries a digest of *key* so outputs differ.
    """
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, 1000, duration_ms)  # version, flags, times, scale
        + struct.pack(">IH10x", 0x10000, 0x100)  # rate 1.0, volume 1.0, reserved
        + matrix
        + bytes(24)  # pre_defined
        + struct.pack(">I", 1),  # next_track_ID
    )
    moov = _box(b"moov", mvhd)
    mdat = _box(b"mdat", hashlib.sha256(key.encode("utf-8")).digest())
    return ftyp + moov + mdat


def render_wav(key: str, *, seconds: float = 0.1, rate: int = 8000) -> bytes:
    """A mono 16-bit PCM WAV of *seconds* of silence (the key only names it)."""
    del key  # silence is silence; the URL already differs per task
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(2 * round(seconds * rate)))
    return buffer.getvalue()


def render_glb(key: str) -> bytes:
    """A binary glTF 2.0 file: the 12-byte header and one JSON chunk (an empty scene)."""
    document = {
        "asset": {"version": "2.0", "generator": "runninghub_async fake"},
        "scene": 0,
        "scenes": [{"name": hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]}],
    }
    chunk = json.dumps(document, separators=(",", ":")).encode("utf-8")
    chunk += b" " * (-len(chunk) % 4)  # chunks are 4-byte aligned, JSON padded with spaces
    body = struct.pack("<I4s", len(chunk), b"JSON") + chunk
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body
