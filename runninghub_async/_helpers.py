"""The nano-banana image helpers of `RunningHub`: arguments to a checked body, then ``submit``.

A mixin so that the client facade stays a facade; the pure request building is
in `_images`, the uploads in `_uploads`.
"""

from __future__ import annotations

import io
import os
import pathlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

import anyio

from . import _catalog, _downloads, _images, _uploads
from ._images import ImageInput
from ._models import JobResult, Output, UploadedFile
from ._prepare import check_encodable, check_webhook_url

if TYPE_CHECKING:
    from ._api import Api
    from ._config import ClientConfig
    from ._job import Job
    from ._live import Live

__all__ = ["FileMethods", "ImageHelpers"]

_MAX_READ_BYTES = 512 * 1024 * 1024


class ImageHelpers:
    """``text_to_image`` and ``edit_image``, with their ``submit_*`` forms."""

    if TYPE_CHECKING:
        _config: ClientConfig
        _upload_cache: _uploads.UploadCache

        @property
        def _api(self) -> Api: ...

        def _open(self) -> Live: ...

        async def submit(
            self, endpoint: str, params: Mapping[str, Any], *, webhook_url: str | None = None
        ) -> Job: ...

    async def submit_text_to_image(
        self,
        prompt: str,
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        webhook_url: str | None = None,
    ) -> Job:
        """Submit a nano-banana text-to-image job and return its handle.

        Args:
            prompt: what to draw.
            model: one of ``"nano-banana-pro"`` (low-price channel),
                ``"nano-banana-pro-official"``, ``"nano-banana-pro-ultra"``,
                ``"nano-banana2"``, ``"nano-banana2-official"``, ``"nano-banana"``,
                ``"nano-banana-official"``, ``"nano-banana2-lite"``,
                ``"nano-banana2-lite-official"``.
            aspect_ratio: e.g. ``"16:9"``; None for the model's default.
            resolution: ``"1k"``, ``"2k"``, ``"4k"`` (ultra: ``"4k"``, ``"8k"``);
                None for the default (1k; ultra 8k).  nano-banana v1 and lite
                have no resolution.
            webhook_url: a URL RunningHub calls when the task ends.

        Raises:
            ValueError: unknown *model* (the message lists the models).
            InvalidParametersError: a value the model does not allow; ``field``,
                ``value`` and ``allowed`` say which.  Nothing was sent.
            Everything ``submit`` raises.
        """
        self._open()
        path, body = _images.image_params(
            "text-to-image",
            prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            validate=self._config.validate,
        )
        return await self.submit(path, body, webhook_url=webhook_url)

    async def text_to_image(
        self,
        prompt: str,
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> JobResult:
        """Generate an image from *prompt* and wait for it (``submit_text_to_image`` + ``wait``).

        Raises:
            Everything ``submit_text_to_image`` and ``Job.wait`` raise.
        """
        job = await self.submit_text_to_image(
            prompt, model=model, aspect_ratio=aspect_ratio, resolution=resolution
        )
        return await job.wait()

    async def submit_edit_image(
        self,
        prompt: str,
        images: Sequence[ImageInput],
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        webhook_url: str | None = None,
    ) -> Job:
        """Submit a nano-banana edit (image-to-image) job and return its handle.

        Every argument is checked first, local files' sizes included; only then
        are local files uploaded (once per distinct content) and replaced by
        their URLs, and the job submitted.

        Args:
            prompt: what to do with the images.
            images: http(s) URLs and ``data:`` URIs (sent as they are), and local
                files as ``pathlib.Path``, bytes or binary file objects.
            model: as for ``submit_text_to_image``.
            aspect_ratio: e.g. ``"16:9"``; None for the model's default (for most
                models, the input image's shape).
            resolution: as for ``submit_text_to_image``.
            webhook_url: a URL RunningHub calls when the task ends.

        Raises:
            ValueError: unknown *model* (the message lists the models).
            InvalidParametersError: a value the model does not allow, too many
                images, a str image that is not a URL, a prompt JSON cannot carry,
                or a bad *webhook_url*; nothing was uploaded.
            FileTooLargeError: an image is over the model's per-image limit
                (``field`` ``imageUrls[i]``); nothing was uploaded.
            TypeError: *images* is not a list of images.
            OSError: a local file cannot be read.
            Everything ``upload`` and ``submit`` raise.
        """
        self._open()
        if webhook_url is not None:
            webhook_url = check_webhook_url(webhook_url)  # before any upload
        path = _images.endpoint_for("edit", model)
        inputs = _images.check_images(images, path)

        def params(
            urls: Sequence[str], sizes: Mapping[str, int] | None = None
        ) -> tuple[str, dict[str, Any]]:
            return _images.image_params(
                "edit",
                prompt,
                model=model,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
                image_urls=urls,
                image_sizes=sizes,
                validate=self._config.validate,
            )

        # Cheap checks before any file is touched, then sizes before any upload.
        params([_images.image_label(image) for image in inputs])
        sources = await _uploads.inspect_images(inputs)
        labels = [s if isinstance(s, str) else s.label for s in sources]
        path, body = params(labels, _uploads.known_sizes(sources))
        if any(isinstance(source, _uploads.LocalFile) for source in sources):
            # What ``submit`` would refuse to encode is refused before the uploads.
            check_encodable(body, path)
        urls = await _uploads.upload_images(self._api, self._upload_cache, sources)
        path, body = params(urls)
        return await self.submit(path, body, webhook_url=webhook_url)

    async def edit_image(
        self,
        prompt: str,
        images: Sequence[ImageInput],
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> JobResult:
        """Edit *images* as *prompt* says and wait for the result.

        ``submit_edit_image`` then ``Job.wait``.

        Raises:
            Everything ``submit_edit_image`` and ``Job.wait`` raise.
        """
        job = await self.submit_edit_image(
            prompt, images, model=model, aspect_ratio=aspect_ratio, resolution=resolution
        )
        return await job.wait()


class FileMethods:
    """Uploads of local files, downloads and reads of results."""

    if TYPE_CHECKING:
        _upload_cache: _uploads.UploadCache

        def _open(self) -> Live: ...

    async def upload(
        self,
        source: os.PathLike[str] | bytes | BinaryIO,
        *,
        filename: str | None = None,
        max_bytes: int = _uploads.MAX_UPLOAD_BYTES,
    ) -> UploadedFile:
        """Upload a local file through ``/openapi/v2/media/upload/binary``.

        The file is streamed, not read into memory, and its size is checked
        before anything is sent.  The same content is uploaded once per client
        (also when several calls ask at once).

        Args:
            source: a path (``pathlib.Path``), the bytes, or a binary file object
                (read from its current position).  A ``str`` is refused: it is
                too easily a URL taken for a path.
            filename: the name to send; default the file's own name, else one
                derived from the content's type.
            max_bytes: the largest file to send (default 30 MB).

        Raises:
            FileTooLargeError: the file is over *max_bytes* (nothing sent).
            InvalidParametersError: the file is empty, or RunningHub refused it.
            TypeError: *source* is not a path, bytes or a binary file object.
            OSError: the file cannot be read.
            APIError, TransportError: the upload failed (after retries).
            ClientClosedError: the client is not open.
        """
        live = self._open()
        local = await _uploads.inspect_local(source, filename=filename, read_limit=max_bytes)
        return await _uploads.upload_local(live.api, self._upload_cache, local, max_bytes=max_bytes)

    async def download(
        self,
        source: JobResult | Output | Iterable[JobResult | Output],
        dest_dir: str | os.PathLike[str],
        *,
        concurrency: int = 4,
    ) -> list[pathlib.Path]:
        """Download result files into *dest_dir* (created if missing).

        Each file is streamed to ``<name>.part`` and renamed when complete, after
        its first bytes were checked against its kind (an HTML page is never saved
        as ``.png``).  Outputs of a `JobResult` are named ``<task_id>_<n>.<ext>``;
        a bare `Output` after the last segment of its URL, sanitised.  An existing
        file is never replaced.  Downloads use a separate session that never
        carries the API key, *concurrency* at a time, bounded by
        ``Timeouts.download_total``, ``download_min_rate`` and ``max_download_bytes``.

        Raises:
            APIError: the file host answered with an HTTP error (an expired URL).
            UnexpectedContentError: a file is empty, or not the kind it claims to be.
            ProtocolError: a file is larger than ``Timeouts.max_download_bytes``.
            TransportError: the connection failed, broke, or was too slow.
            OSError: *dest_dir* cannot be written.
            TypeError, ValueError: *source* holds something else, or a URL is not http(s).
            ClientClosedError: the client is not open, or closed during the download.
        """
        live = self._open()
        plan = _downloads.plan_downloads(source)
        return await _downloads.download_outputs(
            live.transport, plan, dest_dir, concurrency=concurrency
        )

    async def read(self, output: Output, *, max_bytes: int = _MAX_READ_BYTES) -> bytes:
        """The bytes of *output*'s file, checked against its kind (key-less session).

        Raises:
            ValueError: the output has no file, or it is over *max_bytes*; *max_bytes*
                is not a positive int (TypeError for another type), before any request.
            Everything ``download`` raises for one file.
        """
        return await _downloads.read_output(self._open().transport, output, max_bytes=max_bytes)

    async def stream(self, output: Output) -> AsyncIterator[bytes]:
        """The bytes of *output*'s file as they arrive (``async for chunk in ...``).

        Raises:
            Everything ``read`` raises.
        """
        async for chunk in _downloads.stream_output(self._open().transport, output):
            yield chunk

    async def to_image(self, output: Output, *, max_bytes: int = _MAX_READ_BYTES) -> Any:
        """*output*'s image as a ``PIL.Image.Image`` (needs the ``pillow`` extra).

        The bytes are read like ``read()``; decoding runs in a worker thread.

        Raises:
            ModuleNotFoundError: pillow is not installed.
            Everything ``read`` raises; ``PIL.UnidentifiedImageError`` for bytes
            that are no image.
        """
        try:
            from PIL import Image  # an optional extra: imported only when asked for
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                "to_image() needs pillow: pip install 'runninghub-async[pillow]'"
            ) from exc
        data = await self.read(output, max_bytes=max_bytes)

        def decode() -> Any:
            image = Image.open(io.BytesIO(data))
            image.load()
            return image

        return await anyio.to_thread.run_sync(decode)
