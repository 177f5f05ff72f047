"""Result files and pre-signed uploads, on the session that never carries the key."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._config import Timeouts
from ._errors import ProtocolError, RequestTimeoutError, http_error
from ._payloads import FileStream

__all__ = ["FileMethods"]

# Enough for any CDN hop; API calls follow none.
_MAX_FILE_REDIRECTS: Final = 5


class FileMethods:
    """`Transport`'s file operations: bounded in time, rate and size, ended by its close."""

    if TYPE_CHECKING:
        _files: Any  # the key-less aiohttp session (only `_transport` imports aiohttp)
        _timeouts: Timeouts

        def redact(self, text: str) -> str: ...

        def _operation(
            self, what: str, deadline: float = math.inf, *, begun: bool = False
        ) -> contextlib.AbstractContextManager[None]: ...

    async def put_file(
        self,
        url: str,
        chunks: Callable[[], AsyncIterator[bytes]],
        size: int,
        *,
        content_type: str = "application/octet-stream",
    ) -> None:
        """PUT a file to a pre-signed URL on the session that carries no key.

        Not redirected; bounded by ``Timeouts.download_total``.

        Raises:
            APIError: the host answered with an HTTP error.
            TransportError: no usable answer.
            ClientClosedError: the transport closed before or during the upload.
        """
        what = "file upload"
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        deadline = anyio.current_time() + (self._timeouts.download_total or math.inf)
        with self._operation(what, deadline):
            async with self._files.put(
                url, data=chunks(), headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                if response.status >= 300:
                    reason = self.redact(response.reason or "")
                    raise http_error(response.status, reason, endpoint=what)

    @contextlib.asynccontextmanager
    async def stream(self, url: str) -> AsyncIterator[FileStream]:
        """A streaming GET of a result file on the session that carries no key.

        The whole download is bounded by ``Timeouts.download_total``, must
        average ``download_min_rate`` bytes/s once ``read`` seconds have passed,
        and may not exceed ``max_download_bytes`` once decompressed.

        Raises:
            APIError: the file host answered with an HTTP error (an expired URL).
            TransportError: no usable answer, too slow, or the connection broke;
                `ProtocolError` for a file over ``max_download_bytes``.
            ClientClosedError: the transport closed before or during the download.
        """
        start = anyio.current_time()
        deadline = start + (self._timeouts.download_total or math.inf)
        what = "file download"
        with self._operation(what, deadline):
            response = await self._files.get(url, max_redirects=_MAX_FILE_REDIRECTS)
        try:
            if response.status >= 400:
                reason = self.redact(response.reason or "")
                raise http_error(response.status, reason, endpoint=what)
            # aiohttp decompresses files: a compressed file's declared size is not its size.
            length = None if "Content-Encoding" in response.headers else response.content_length
            cap = self._timeouts.max_download_bytes
            if cap is not None and length is not None and length > cap:
                raise _too_large(cap)
            yield FileStream(
                response.headers.get("Content-Type", ""),
                length,
                self._chunks(response, start, deadline),
            )
        finally:
            response.release()

    async def _chunks(
        self, response: Any, start: float, deadline: float
    ) -> AsyncIterator[bytes]:
        received = 0
        min_rate = self._timeouts.download_min_rate
        cap = self._timeouts.max_download_bytes
        grace = self._timeouts.read
        while True:
            # One read per scope: a scope must never span this generator's yield.
            with self._operation("file download", deadline, begun=True):
                chunk = await response.content.readany()
            if not chunk:
                return
            received += len(chunk)
            if cap is not None and received > cap:
                raise _too_large(cap)
            elapsed = anyio.current_time() - start
            if min_rate is not None and elapsed > grace and received / elapsed < min_rate:
                raise RequestTimeoutError(
                    f"file download slower than {min_rate:g} bytes/s ({received} bytes "
                    f"in {elapsed:.0f} s)"
                )
            yield chunk


def _too_large(cap: int) -> ProtocolError:
    return ProtocolError(f"the file is larger than max_download_bytes={cap}; nothing was kept")
