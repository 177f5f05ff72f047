"""The nano-banana image helpers of `RunningHub`: arguments to a checked body, then ``submit``.

A mixin so that the client facade stays a facade; the pure request building is
in `_images`, the uploads in `_uploads`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _catalog, _images, _uploads
from ._images import ImageInput
from ._models import JobResult

if TYPE_CHECKING:
    from ._api import Api
    from ._config import ClientConfig
    from ._job import Job

__all__ = ["ImageHelpers"]


class ImageHelpers:
    """``text_to_image`` and ``edit_image``, with their ``submit_*`` forms."""

    if TYPE_CHECKING:
        _config: ClientConfig
        _upload_cache: _uploads.UploadCache

        @property
        def _api(self) -> Api: ...

        def _open(self) -> object: ...

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
                images, or a str image that is not a URL; nothing was uploaded.
            FileTooLargeError: an image is over the model's per-image limit
                (``field`` ``imageUrls[i]``); nothing was uploaded.
            TypeError: *images* is not a list of images.
            OSError: a local file cannot be read.
            Everything ``upload`` and ``submit`` raise.
        """
        self._open()
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
        params(labels, _uploads.known_sizes(sources))
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
