"""Downloads of results: streamed to ``.part`` files, published without overwriting.

Each result streams to ``<name>.part`` next to its destination and takes its
final name only when complete, without ever replacing an existing file; a
failed or cancelled download removes its ``.part``.  Requests go through the
transport's key-less file session.  File I/O goes through anyio.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Final, cast
from urllib.parse import unquote, urlsplit

import anyio

from ._concurrency import run_all
from ._errors import UnexpectedContentError
from ._models import JobResult, Output
from ._transport import Transport

__all__ = ["check_kind", "download_outputs", "plan_downloads", "read_output", "stream_output"]

_CHUNK: Final = 256 * 1024
# Cleanup after a failure or cancellation must finish, but never hang the caller.
_CLEANUP_SECONDS: Final = 5.0

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSION = re.compile(r"[A-Za-z0-9]{1,10}")
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_MAX_NAME = 120


def _is_mp3(head: bytes) -> bool:
    return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


# What the first bytes of a file of each kind look like.  Kinds not listed
# (text, json, unknown) are not checked.
_SIGNATURES: Final[dict[str, Callable[[bytes], bool]]] = {
    "png": lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"),
    "jpg": lambda h: h.startswith(b"\xff\xd8\xff"),
    "jpeg": lambda h: h.startswith(b"\xff\xd8\xff"),
    "gif": lambda h: h.startswith(b"GIF8"),
    "webp": lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP",
    "bmp": lambda h: h.startswith(b"BM"),
    "mp4": lambda h: h[4:8] == b"ftyp",
    "mov": lambda h: h[4:8] in (b"ftyp", b"moov", b"wide", b"mdat"),
    "m4a": lambda h: h[4:8] == b"ftyp",
    "webm": lambda h: h.startswith(b"\x1a\x45\xdf\xa3"),
    "wav": lambda h: h[:4] == b"RIFF" and h[8:12] == b"WAVE",
    "mp3": _is_mp3,
    "flac": lambda h: h.startswith(b"fLaC"),
    "ogg": lambda h: h.startswith(b"OggS"),
    "glb": lambda h: h.startswith(b"glTF"),
    "zip": lambda h: h.startswith(b"PK"),
}
_SNIFF_BYTES: Final = 16


def check_kind(head: bytes, ext: str, what: str) -> None:
    """Raise `UnexpectedContentError` when *head* cannot start a file of kind *ext*."""
    signature = _SIGNATURES.get(ext.lower())
    if signature is None or signature(head):
        return
    looks = "an HTML page" if head.lstrip()[:1] == b"<" else "something else"
    raise UnexpectedContentError(
        f"{what} should be {ext} but its content is {looks}; nothing was kept", expected=ext
    )


def _safe_name(text: str) -> str:
    """*text* as one harmless file-name component, or ``""``.

    Only ASCII letters, digits, ``.``, ``_`` and ``-`` survive; leading dots and
    dashes go (no hidden files, no ``..``, nothing that reads as an option).
    """
    name = _UNSAFE.sub("_", text).lstrip("._-").rstrip(". ")
    if len(name) > _MAX_NAME:
        _, dot, ext = name.rpartition(".")
        keep = f"{dot}{ext}" if dot and _EXTENSION.fullmatch(ext) else ""
        name = name[: _MAX_NAME - len(keep)] + keep
    if name.partition(".")[0].upper() in _RESERVED:
        name = "_" + name
    return name


def _extension(output: Output) -> str:
    for candidate in (output.output_type or "", _url_suffix(output.url or "")):
        if _EXTENSION.fullmatch(candidate):
            return candidate.lower()
    return "bin"


def _url_basename(url: str) -> str:
    path = unquote(urlsplit(url).path)
    return path.replace("\\", "/").rstrip("/").rpartition("/")[2]


def _url_suffix(url: str) -> str:
    base = _url_basename(url)
    return base.rpartition(".")[2] if "." in base else ""


def plan_downloads(
    source: JobResult | Output | Iterable[JobResult | Output],
) -> list[tuple[str, str]]:
    """``(url, file name)`` for every output with a URL, in order.

    A result's outputs are named ``<task_id>_<n>.<ext>`` (*n* its position
    among the result's outputs); a bare `Output` after the sanitised last
    segment of its URL's path.  Names are single safe path components.

    Raises:
        TypeError: *source* holds something other than results and outputs.
        ValueError: an output's URL is not http(s).
    """
    items: Iterable[object]
    if isinstance(source, JobResult | Output):
        items = (source,)
    elif isinstance(cast("object", source), str | bytes) or not isinstance(source, Iterable):
        raise TypeError(
            f"expected a JobResult, an Output or an iterable of them, got {type(source).__name__}"
        )
    else:
        items = source
    plan: list[tuple[str, str]] = []
    for item in items:
        if isinstance(item, JobResult):
            task = _safe_name(item.task_id) or "task"
            for n, output in enumerate(item.outputs):
                if output.url:
                    plan.append((output.url, f"{task}_{n}.{_extension(output)}"))
        elif isinstance(item, Output):
            if item.url:
                name = _safe_name(_url_basename(item.url)) or "output"
                if "." not in name:
                    name = f"{name}.{_extension(item)}"
                plan.append((item.url, name))
        else:
            raise TypeError(f"expected a JobResult or an Output, got {type(item).__name__}")
    for url, _ in plan:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"cannot download {url[:60]!r}: not an http(s) URL")
    return plan


def _numbered(name: str, n: int) -> str:
    if n == 0:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-{n}.{ext}" if dot and stem else f"{name}-{n}"


async def download_outputs(
    transport: Transport,
    plan: Sequence[tuple[str, str]],
    dest_dir: str | os.PathLike[str],
    *,
    concurrency: int = 4,
) -> list[pathlib.Path]:
    """Download each ``(url, name)`` of *plan* into *dest_dir*; the paths, in order.

    An existing file is never replaced: the name gets ``-1``, ``-2``, ... instead.
    On the first failure the other downloads are cancelled, every unfinished
    ``.part`` is removed, and the error is raised; files already complete stay.

    Raises:
        APIError: the file host answered with an HTTP error (e.g. an expired URL).
        TransportError: the connection failed or broke mid-file.
        OSError: *dest_dir* or a file in it could not be written.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
    dest = anyio.Path(dest_dir)
    await dest.mkdir(parents=True, exist_ok=True)
    dest = await dest.absolute()
    paths: list[pathlib.Path | None] = [None] * len(plan)
    taken: set[str] = set()

    async def one(index: int) -> None:
        url, name = plan[index]
        paths[index] = await _download(transport, url, dest, name, taken)

    await run_all(range(len(plan)), one, limit=concurrency)
    return [p for p in paths if p is not None]


async def _download(
    transport: Transport, url: str, dest: anyio.Path, name: str, taken: set[str]
) -> pathlib.Path:
    async with transport.stream(url) as stream:
        chunks = _checked(stream.chunks, name.rpartition(".")[2], name)
        first = await anext(chunks, b"")  # a mismatch fails before any file exists
        final, part, file = await _claim(dest, name, taken)
        try:
            async with file:
                await file.write(first)
                async for chunk in chunks:
                    await file.write(chunk)
            final = await _publish(dest, part, final, name, taken)
        except BaseException:
            with anyio.move_on_after(_CLEANUP_SECONDS, shield=True):
                await part.unlink(missing_ok=True)
            raise
        with anyio.move_on_after(_CLEANUP_SECONDS, shield=True):
            await part.unlink(missing_ok=True)
    return pathlib.Path(final)


async def _checked(chunks: AsyncIterator[bytes], ext: str, what: str) -> AsyncIterator[bytes]:
    """*chunks*, once the first bytes have been checked against the kind *ext*."""
    head = b""
    async for chunk in chunks:
        if len(head) < _SNIFF_BYTES:
            head += chunk
            if len(head) < _SNIFF_BYTES:
                continue
            check_kind(head, ext, what)
            chunk, head = head, head[:_SNIFF_BYTES]
        yield chunk
    if 0 < len(head) < _SNIFF_BYTES:
        check_kind(head, ext, what)
        yield head


async def stream_output(transport: Transport, output: Output) -> AsyncIterator[bytes]:
    """The bytes of *output*'s file, chunk by chunk, checked against its kind."""
    url, name = _only(output)
    async with transport.stream(url) as stream:
        async for chunk in _checked(stream.chunks, name.rpartition(".")[2], name):
            yield chunk


async def read_output(transport: Transport, output: Output, *, max_bytes: int) -> bytes:
    """The whole file of *output*, at most *max_bytes* long."""
    parts: list[bytes] = []
    size = 0
    async for chunk in stream_output(transport, output):
        size += len(chunk)
        if size > max_bytes:
            raise ValueError(f"the output is larger than max_bytes={max_bytes}")
        parts.append(chunk)
    return b"".join(parts)


def _only(output: object) -> tuple[str, str]:
    if not isinstance(output, Output):
        raise TypeError(f"expected an Output, got {type(output).__name__}")
    plan = plan_downloads(output)
    if not plan:
        raise ValueError("this output has no file (a text output: read output.text)")
    return plan[0]


async def _claim(
    dest: anyio.Path, name: str, taken: set[str]
) -> tuple[anyio.Path, anyio.Path, anyio.AsyncFile[bytes]]:
    """A free final name and its ``.part``, created exclusively and open for writing."""
    n = 0
    while True:
        candidate = _numbered(name, n)
        n += 1
        if candidate in taken:
            continue
        # Reserved before the first await, so downloads of this call never pick
        # the same name; exclusive creation guards against everyone else.
        taken.add(candidate)
        final = dest / candidate
        part = dest / f"{candidate}.part"
        if await final.exists():
            continue
        try:
            file = await anyio.open_file(part, "xb")
        except FileExistsError:
            continue
        return final, part, file


async def _publish(
    dest: anyio.Path, part: anyio.Path, final: anyio.Path, name: str, taken: set[str]
) -> anyio.Path:
    """Give the complete *part* its final name without replacing any file.

    A hard link fails if the name exists (a rename would overwrite it); where
    the file system has no hard links, rename after checking.
    """
    n = 0
    while True:
        try:
            await final.hardlink_to(part)
            return final
        except FileExistsError:
            pass
        except OSError:
            if not await final.exists():
                await part.rename(final)
                return final
        while True:
            n += 1
            candidate = _numbered(name, n)
            if candidate not in taken:
                taken.add(candidate)
                final = dest / candidate
                break
