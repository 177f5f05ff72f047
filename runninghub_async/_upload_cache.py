"""The per-client upload cache: the same bytes are uploaded once, even at the same moment.

Kept apart from `_uploads` (which measures, hashes and streams the files) because
it knows nothing about files: it maps a content hash to the upload of that
content, and makes concurrent uploads of one hash share a single request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import anyio

from ._models import UploadedFile

__all__ = ["UPLOAD_REUSE_SECONDS", "UploadCache"]

# An upload's download_url is documented valid for one day; reusing it for half
# that leaves a queued job plenty of time to fetch it.
UPLOAD_REUSE_SECONDS: Final = 12 * 3600.0


class UploadCache:
    """What a client uploaded, by content hash: the same bytes are uploaded once.

    Concurrent uploads of the same content share one request: the first caller
    uploads, the others wait for it.  If that upload fails or is cancelled, a
    waiter takes over (it never inherits another caller's cancellation).
    Entries are reused for `UPLOAD_REUSE_SECONDS`, well inside the one day
    RunningHub keeps an upload's URL valid.
    """

    def __init__(self, reuse_seconds: float = UPLOAD_REUSE_SECONDS) -> None:
        self._reuse_seconds = reuse_seconds
        self._done: dict[str, tuple[float, UploadedFile]] = {}
        self._pending: dict[str, anyio.Event] = {}

    def _fresh(self, digest: str, now: float) -> UploadedFile | None:
        entry = self._done.get(digest)
        if entry is None:
            return None
        if now - entry[0] >= self._reuse_seconds:
            del self._done[digest]
            return None
        return entry[1]

    async def get_or_upload(
        self, digest: str, upload: Callable[[], Awaitable[UploadedFile]]
    ) -> UploadedFile:
        """The upload of content *digest*: cached, awaited from another caller, or done now."""
        while True:
            hit = self._fresh(digest, anyio.current_time())
            if hit is not None:
                return hit
            pending = self._pending.get(digest)
            if pending is None:
                break
            await pending.wait()
        # No await since the checks above: this caller is now the only uploader.
        event = self._pending[digest] = anyio.Event()
        try:
            uploaded = await upload()
            now = anyio.current_time()
            self._done[digest] = (now, uploaded)
            self._prune(now)
            return uploaded
        finally:
            del self._pending[digest]
            event.set()

    def _prune(self, now: float) -> None:
        stale = [d for d, (at, _) in self._done.items() if now - at >= self._reuse_seconds]
        for digest in stale:
            del self._done[digest]
