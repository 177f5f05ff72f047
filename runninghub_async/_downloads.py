"""Downloads of results: streamed to ``.part`` files, published without overwriting.

Each result streams to ``<name>.part`` next to its destination and takes its
final name only when complete, without ever replacing an existing file; a
failed or cancelled download removes its ``.part``.  A file's first bytes are
checked against the kind its output claims (its ``output_type``, else its URL's
extension), and an empty file is no result.  Requests go through the
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

__all__ = [
    "Planned",
    "check_kind",
    "check_max_bytes",
    "download_outputs",
    "plan_downloads",
    "read_output",
    "stream_output",
]

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
    """Raise `UnexpectedContentError` when *head* cannot start a file of kind *ext*.

    No bytes at all start no file of any kind.
    """
    if not head:
        raise UnexpectedContentError(f"{what} is empty; nothing was kept", expected=ext)
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


def _claimed_kind(output: Output) -> str:
    """The kind *output*'s content must be: its declared type, else its URL's extension.

    Whichever can be checked comes first, so a URL's name (``page.exe``) never
    lets through what the declared type (``png``) would refuse, and a vague
    type (``image``) does not waive the check a ``.png`` URL asks for.
    """
    candidates = (output.output_type or "", _url_suffix(output.url or ""))
    for candidate in candidates:
        if candidate.lower() in _SIGNATURES:
            return candidate.lower()
    return _extension(output)


def _url_basename(url: str) -> str:
    path = unquote(urlsplit(url).path)
    return path.replace("\\", "/").rstrip("/").rpartition("/")[2]


def _url_suffix(url: str) -> str:
    base = _url_basename(url)
    return base.rpartition(".")[2] if "." in base else ""


class Planned(tuple[str, str]):
    """A ``(url, file name)`` pair that also knows the kind its content must be.

    The kind comes from the output (`_claimed_kind`), not from the file name: a
    name taken from the URL (``page.exe``) never decides what the content is
    checked against.  It compares and unpacks as the plain pair.
    """

    kind: str

    def __new__(cls, url: str, name: str, kind: str) -> Planned:
        """The pair ``(url, name)``, checked as a *kind* file."""
        planned = super().__new__(cls, (url, name))
        planned.kind = kind
        return planned


def _kind(planned: tuple[str, str]) -> str:
    """What *planned*'s content is checked against (a plain pair: its name's extension)."""
    if isinstance(planned, Planned):
        return planned.kind
    name = planned[1]
    return name.rpartition(".")[2] if "." in name else ""


def plan_downloads(
    source: JobResult | Output | Iterable[JobResult | Output],
) -> list[tuple[str, str]]:
    """``(url, file name)`` for every output with a URL, in order.

    A result's outputs are named ``<task_id>_<n>.<ext>`` (*n* its position
    among the result's outputs); a bare `Output` after the sanitised last
    segment of its URL's path.  Names are single safe path components.  Each
    pair is a `Planned`: it knows the kind its content is checked against.

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
                    name = f"{task}_{n}.{_extension(output)}"
                    plan.append(Planned(output.url, name, _claimed_kind(output)))
        elif isinstance(item, Output):
            if item.url:
                name = _safe_name(_url_basename(item.url)) or "output"
                if "." not in name:
                    name = f"{name}.{_extension(item)}"
                plan.append(Planned(item.url, name, _claimed_kind(item)))
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
        UnexpectedContentError: a file is empty, or not of its kind.
        TransportError: the connection failed or broke mid-file; `ProtocolError`
            for a file over ``Timeouts.max_download_bytes``.
        ClientClosedError: the client closed during the downloads.
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
        kind = _kind(plan[index])
        paths[index] = await _download(transport, url, dest, name, kind, taken)

    await run_all(range(len(plan)), one, limit=concurrency)
    return [p for p in paths if p is not None]


async def _download(
    transport: Transport, url: str, dest: anyio.Path, name: str, kind: str, taken: set[str]
) -> pathlib.Path:
    async with transport.stream(url) as stream:
        chunks = _checked(stream.chunks, kind, name)
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
    """*chunks*, once the first bytes have been checked against the kind *ext*.

    An empty file fails too (`check_kind`), before anything is yielded.
    """
    head = b""
    async for chunk in chunks:
        if len(head) < _SNIFF_BYTES:
            head += chunk
            if len(head) < _SNIFF_BYTES:
                continue
            check_kind(head, ext, what)
            chunk, head = head, head[:_SNIFF_BYTES]
        yield chunk
    if len(head) < _SNIFF_BYTES:
        check_kind(head, ext, what)
        yield head


async def stream_output(transport: Transport, output: Output) -> AsyncIterator[bytes]:
    """The bytes of *output*'s file, chunk by chunk, checked against its kind."""
    planned = _only(output)
    async with transport.stream(planned[0]) as stream:
        async for chunk in _checked(stream.chunks, _kind(planned), planned[1]):
            yield chunk


def check_max_bytes(max_bytes: object) -> int:
    """*max_bytes* if it is an int >= 1, else TypeError/ValueError (before any request)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
        raise TypeError(f"max_bytes must be an int, got {type(max_bytes).__name__} {max_bytes!r}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1 (an empty file is no result), got {max_bytes!r}")
    return max_bytes


async def read_output(transport: Transport, output: Output, *, max_bytes: int) -> bytes:
    """The whole file of *output*, at most *max_bytes* long, checked against its kind.

    Raises:
        TypeError: *max_bytes* is not an int, or *output* not an `Output`.
        ValueError: *max_bytes* is below 1, the output has no file, or the file is
            over *max_bytes* (known from its declared size when there is one).
        UnexpectedContentError: the file is empty, or not of its kind.
        ClientClosedError: the client closed during the read.
    """
    check_max_bytes(max_bytes)
    url, name = planned = _only(output)
    parts: list[bytes] = []
    size = 0
    async with transport.stream(url) as stream:
        if stream.length is not None and stream.length > max_bytes:
            raise ValueError(f"the output is larger than max_bytes={max_bytes}")
        async for chunk in _checked(stream.chunks, _kind(planned), name):
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
