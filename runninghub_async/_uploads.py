"""Uploads of local images: streamed, size-checked before sending, content-addressed.

Uploads stream from the file (never reading it whole into memory on the loop),
check its size before anything is sent, and are content-addressed: a client
uploads the same bytes once, even when several calls ask at the same moment
(the cache that shares them is `_upload_cache.UploadCache`, re-exported here).
File I/O goes through anyio (worker threads), so the event loop never blocks.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pathlib
import stat
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, BinaryIO, Final, cast

import anyio
import attrs

from ._api import UPLOAD_PATH, Api
from ._concurrency import run_all
from ._config import check_base_url
from ._errors import FileTooLargeError, InvalidParametersError, ProtocolError
from ._images import data_uri_size, image_label
from ._models import UploadedFile
from ._transport import FormFile
from ._upload_cache import UPLOAD_REUSE_SECONDS as UPLOAD_REUSE_SECONDS
from ._upload_cache import UploadCache

__all__ = [
    "MAX_UPLOAD_BYTES",
    "UPLOAD_PATH",
    "LocalFile",
    "UploadCache",
    "checked_upload",
    "inspect_images",
    "inspect_local",
    "known_sizes",
    "upload_images",
    "upload_local",
]

MB: Final = 1024 * 1024
MAX_UPLOAD_BYTES: Final = 30 * MB
"""The largest file ``upload()`` sends by default: the documented legacy limit, as
the new endpoint's own limit is unknown (runninghub-api.md section 4.1)."""

# Hashing small byte strings on the loop is cheaper than a thread hop.
_INLINE_HASH_BYTES: Final = 1 * MB
_CHUNK: Final = 256 * 1024
_UPLOAD_CONCURRENCY: Final = 4

_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF8", "gif"),
)


# -- local sources -----------------------------------------------------------------


@attrs.frozen
class LocalFile:
    """A local input, measured but not read: where its bytes come from and how many.

    Exactly one of ``path``, ``data`` and ``stream`` is set; a stream is read
    from ``start`` on.
    """

    label: str
    size: int
    filename: str | None = None
    path: pathlib.Path | None = None
    data: bytes | None = None
    stream: BinaryIO | None = attrs.field(default=None, eq=False)
    start: int = 0


async def inspect_local(
    source: os.PathLike[str] | bytes | BinaryIO,
    *,
    filename: str | None = None,
    read_limit: int = MAX_UPLOAD_BYTES,
) -> LocalFile:
    """Measure a local source without reading its content (a path is only stat'ed).

    A stream that cannot seek is read into memory, at most ``read_limit + 1``
    bytes: enough to know whether it is too large.

    Raises:
        TypeError: *source* is not a path, bytes or a binary file object (a str
            is refused: pass ``pathlib.Path(...)`` for a local file).
        ValueError: a path that is not a regular file, or a file object
            positioned past its end.
        OSError: the file cannot be read.
    """
    label = image_label(source)
    if isinstance(source, bytes | bytearray | memoryview):
        data = source if isinstance(source, bytes) else bytes(source)
        return LocalFile(label, len(data), filename, data=data)
    if isinstance(source, str):
        raise TypeError(
            f"a str is not a local file: pass pathlib.Path({source!r}) to upload it, "
            "or an http(s) URL where a URL is accepted"
        )
    if isinstance(source, os.PathLike):
        path = pathlib.Path(os.fsdecode(os.fspath(source)))
        info = await anyio.Path(path).stat()
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"not a regular file: {str(path)!r}")
        return LocalFile(label, info.st_size, filename or path.name, path=path)
    if isinstance(cast("object", source), io.TextIOBase):
        raise TypeError("the file object must be opened in binary mode ('rb')")
    if callable(getattr(source, "read", None)):
        name = getattr(source, "name", None)
        default = os.path.basename(name) if isinstance(name, str) else None
        start, size, content = await anyio.to_thread.run_sync(_measure_stream, source, read_limit)
        if content is not None:
            return LocalFile(label, len(content), filename or default, data=content)
        return LocalFile(label, size, filename or default, stream=source, start=start)
    raise TypeError(f"expected a path, bytes or a binary file object, got {type(source).__name__}")


def _measure_stream(stream: BinaryIO, read_limit: int) -> tuple[int, int, bytes | None]:
    """(start, size, None) for a seekable stream; (0, 0, content) for one that is not."""
    try:
        if stream.seekable():
            start = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(start)
        else:
            start = end = -1
    except (OSError, AttributeError, ValueError):
        start = end = -1
    if start >= 0:
        if end < start:
            # Uploads read from the current position: past the end, the size
            # would be negative (and aiohttp's Content-Length invalid).
            raise ValueError(
                f"the file object is positioned at byte {start}, past its end ({end} bytes); "
                "seek(0) to upload it from the start"
            )
        return start, end - start, None
    # Not seekable (a pipe, a socket): buffer it, but never more than the limit allows.
    chunks: list[bytes] = []
    total = 0
    while total <= read_limit:
        chunk = stream.read(min(_CHUNK, read_limit + 1 - total))
        if not chunk:
            break
        if not isinstance(chunk, bytes | bytearray):
            raise TypeError("the file object must be opened in binary mode ('rb')")
        chunks.append(bytes(chunk))
        total += len(chunk)
    return 0, 0, b"".join(chunks)


async def inspect_images(images: Sequence[Any]) -> list[str | LocalFile]:
    """Each image as a URL (kept) or a measured `LocalFile`, in order.

    Raises:
        TypeError, ValueError, OSError: as `inspect_local`.
    """
    return [image if isinstance(image, str) else await inspect_local(image) for image in images]


def known_sizes(sources: Sequence[str | LocalFile]) -> dict[str, int]:
    """Sizes in bytes by label (or data URI) of the sources whose size is known."""
    sizes: dict[str, int] = {}
    for source in sources:
        if isinstance(source, LocalFile):
            sizes[source.label] = source.size
        elif (size := data_uri_size(source)) is not None:
            sizes[source] = size
    return sizes


# -- hashing and streaming ---------------------------------------------------------


class _Reader:
    """Reads of one open file at explicit offsets, one at a time (worker threads only).

    aiohttp writes a request body in a task of its own and cancels it natively
    when the connection fails, which can leave a read running in a worker
    thread.  Reading at explicit offsets under a lock means such a stray read
    never moves the position of the next attempt; opening and closing the file
    here, in the upload's own scope, means a cancelled body write never leaks it.
    """

    def __init__(self, file: BinaryIO, *, owned: bool) -> None:
        self._file = file
        self._owned = owned
        self._lock = threading.Lock()

    def read_at(self, offset: int, size: int) -> bytes:
        with self._lock:
            self._file.seek(offset)
            return self._file.read(size)

    def close(self) -> None:
        if self._owned:
            with self._lock:
                self._file.close()


def _open_binary(path: pathlib.Path) -> BinaryIO:
    return path.open("rb")


@contextlib.asynccontextmanager
async def _reader(local: LocalFile) -> AsyncIterator[_Reader | None]:
    """A `_Reader` of *local* for as long as the upload needs it (None for bytes)."""
    if local.data is not None:
        yield None
        return
    if local.path is not None:
        reader = _Reader(await anyio.to_thread.run_sync(_open_binary, local.path), owned=True)
    else:
        assert local.stream is not None
        reader = _Reader(local.stream, owned=False)
    try:
        yield reader
    finally:
        try:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(reader.close)
        except BaseException:
            # Cancelled natively before a thread took the close: close it here
            # rather than leak it (closing a read-only file does not wait on I/O).
            reader.close()
            raise


async def _digest(local: LocalFile, reader: _Reader | None) -> tuple[str, bytes]:
    """The sha256 hex digest of *local*'s content, and its first bytes (to sniff its type)."""
    if local.data is not None:
        if len(local.data) <= _INLINE_HASH_BYTES:
            return hashlib.sha256(local.data).hexdigest(), local.data[:16]
        return await anyio.to_thread.run_sync(_hash_bytes, local.data)
    assert reader is not None
    return await anyio.to_thread.run_sync(_hash_file, local, reader)


def _hash_bytes(data: bytes) -> tuple[str, bytes]:
    return hashlib.sha256(data).hexdigest(), data[:16]


def _hash_file(local: LocalFile, reader: _Reader) -> tuple[str, bytes]:
    digest = hashlib.sha256()
    head = b""
    offset = 0
    while offset < local.size:
        chunk = reader.read_at(local.start + offset, min(_CHUNK, local.size - offset))
        if not chunk:
            raise ValueError(f"{local.label} got shorter while it was being read")
        if not head:
            head = chunk[:16]
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest(), head


def _chunks(local: LocalFile, reader: _Reader | None) -> Callable[[], AsyncIterator[bytes]]:
    """A factory of fresh iterators over *local*'s content (one per upload attempt)."""

    async def chunks() -> AsyncIterator[bytes]:
        if local.data is not None:
            for offset in range(0, len(local.data), _CHUNK):
                yield local.data[offset : offset + _CHUNK]
            return
        assert reader is not None
        offset = 0
        while offset < local.size:
            chunk = await anyio.to_thread.run_sync(
                reader.read_at, local.start + offset, min(_CHUNK, local.size - offset)
            )
            if not chunk:
                raise OSError(f"{local.label} got shorter while it was being uploaded")
            yield chunk
            offset += len(chunk)

    return chunks


def _upload_name(local: LocalFile, digest: str, head: bytes) -> str:
    """The file name to send: the given or file's own name, else one from its content."""
    if local.filename:
        return local.filename
    ext = next((ext for magic, ext in _MAGIC if head.startswith(magic)), None)
    if ext is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        ext = "webp"
    return f"{digest[:16]}.{ext or 'bin'}"


# -- uploads -------------------------------------------------------------------------


async def upload_local(
    api: Api,
    cache: UploadCache,
    local: LocalFile,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    field: str = "file",
) -> UploadedFile:
    """Upload *local* unless this client already did (by content), and return the upload.

    Raises:
        FileTooLargeError: *local* is over *max_bytes*; nothing was sent.
        InvalidParametersError: *local* is empty (nothing sent), or RunningHub refused it.
        APIError, TransportError: the upload failed (transient failures are retried).
    """
    if local.size > max_bytes:
        allowed = f"at most {max_bytes} bytes ({max_bytes / MB:g} MB)"
        raise FileTooLargeError(
            "local",
            f"{field}={local.label} is {local.size} bytes; allowed: {allowed}",
            endpoint=UPLOAD_PATH,
            field=field,
            value=local.label,
            allowed=allowed,
        )
    if local.size == 0:
        raise InvalidParametersError(
            "local",
            f"{field}={local.label} is empty",
            endpoint=UPLOAD_PATH,
            field=field,
            value=local.label,
            allowed="a non-empty file",
        )
    async with _reader(local) as reader:
        digest, head = await _digest(local, reader)
        filename = _upload_name(local, digest, head)

        form = FormFile(filename, local.size, _chunks(local, reader))

        async def send() -> UploadedFile:
            return checked_upload(await api.upload(lambda: form))

        return await cache.get_or_upload(digest, send)


def checked_upload(uploaded: UploadedFile) -> UploadedFile:
    """*uploaded* if its answer can be submitted: an http(s) URL and a file name.

    The answer's URL goes into a paid submit as it is, so a server that answers
    an upload with no usable URL (empty, ``javascript:``, a number) fails the
    upload here, never the submit (and the answer is not cached).

    Raises:
        ProtocolError: the upload answer has no absolute http(s) URL or no file name.
    """
    try:
        check_base_url(uploaded.download_url, name="download_url", query=True)
    except (TypeError, ValueError):
        raise ProtocolError(
            f"{UPLOAD_PATH} answered an upload without an absolute http(s) download_url: "
            f"{str(uploaded.download_url)[:80]!r}"
        ) from None
    if not isinstance(uploaded.file_name, str) or not uploaded.file_name.strip():
        raise ProtocolError(f"{UPLOAD_PATH} answered an upload without a fileName")
    return uploaded


async def upload_images(
    api: Api, cache: UploadCache, sources: Sequence[str | LocalFile]
) -> list[str]:
    """*sources* as URLs: URLs as they are, local files uploaded (a few at a time).

    Raises:
        FileTooLargeError: a file is over `MAX_UPLOAD_BYTES` (field ``imageUrls[i]``).
        APIError, TransportError: an upload failed; the others were cancelled.
    """
    urls = [s if isinstance(s, str) else "" for s in sources]
    pending = [i for i, s in enumerate(sources) if isinstance(s, LocalFile)]

    async def one(index: int) -> None:
        local = sources[index]
        assert isinstance(local, LocalFile)
        uploaded = await upload_local(api, cache, local, field=f"imageUrls[{index}]")
        urls[index] = uploaded.download_url

    await run_all(pending, one, limit=_UPLOAD_CONCURRENCY)
    return urls
