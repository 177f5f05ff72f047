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
from collections.abc import Iterable, Sequence
from typing import Final, cast
from urllib.parse import unquote, urlsplit

import anyio

from ._gather import run_all
from ._models import JobResult, Output
from ._transport import Transport

__all__ = ["download_outputs", "plan_downloads"]

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
    async with transport.open_file(url) as response:
        final, part, file = await _claim(dest, name, taken)
        try:
            async with file:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    await file.write(chunk)
            final = await _publish(dest, part, final, name, taken)
        except BaseException:
            with anyio.move_on_after(_CLEANUP_SECONDS, shield=True):
                await part.unlink(missing_ok=True)
            raise
        with anyio.move_on_after(_CLEANUP_SECONDS, shield=True):
            await part.unlink(missing_ok=True)
    return pathlib.Path(final)


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
