"""The blocking twins of the async client's AI-app, workflow and account-level calls.

A mixin of ``runninghub_async.sync.RunningHub``, so that module stays readable;
each method runs its async twin on the client's own event loop thread.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from . import _catalog, _uploads
from ._extras_models import ApiKeyInfo, LoraUpload, Price, ResourcePage, WebhookDetail
from ._images import ImageInput
from ._models import JobResult, Output, UploadedFile
from ._nodes import NodeInputs

if TYPE_CHECKING:
    from ._client import RunningHub as AsyncRunningHub
    from ._job import Job as AsyncJob
    from .sync import Job as SyncJob

__all__ = ["SyncExtras", "SyncFiles"]

_T = TypeVar("_T")


class SyncExtras:
    """``submit_app``, ``run_workflow``, ``price``, ``request``, ... blocking."""

    if TYPE_CHECKING:
        _client: AsyncRunningHub

        def _call(self, fn: Callable[[], Awaitable[_T]]) -> _T: ...

        def _job(self, job: AsyncJob) -> SyncJob: ...

        def _iterate(self, make: Callable[[], AsyncIterator[_T]]) -> Generator[_T, None, None]: ...

    def submit_app(
        self,
        webapp_id: str | int,
        inputs: NodeInputs,
        *,
        instance_type: str | None = None,
        use_personal_queue: bool | None = None,
        webhook_url: str | None = None,
    ) -> Any:
        """Start an AI app; blocking ``RunningHub.submit_app``.  Returns a `sync.Job`."""
        return self._job(
            self._call(
                lambda: self._client.submit_app(
                    webapp_id,
                    inputs,
                    instance_type=instance_type,
                    use_personal_queue=use_personal_queue,
                    webhook_url=webhook_url,
                )
            )
        )

    def run_app(
        self,
        webapp_id: str | int,
        inputs: NodeInputs,
        *,
        instance_type: str | None = None,
        use_personal_queue: bool | None = None,
    ) -> JobResult:
        """Run an AI app and wait; blocking ``RunningHub.run_app``."""
        return self._call(
            lambda: self._client.run_app(
                webapp_id,
                inputs,
                instance_type=instance_type,
                use_personal_queue=use_personal_queue,
            )
        )

    def submit_workflow(
        self,
        workflow_id: str | int,
        inputs: NodeInputs,
        *,
        instance_type: str | None = None,
        use_personal_queue: bool | None = None,
        add_metadata: bool | None = None,
        webhook_url: str | None = None,
    ) -> Any:
        """Start a workflow; blocking ``RunningHub.submit_workflow``.  Returns a `sync.Job`."""
        return self._job(
            self._call(
                lambda: self._client.submit_workflow(
                    workflow_id,
                    inputs,
                    instance_type=instance_type,
                    use_personal_queue=use_personal_queue,
                    add_metadata=add_metadata,
                    webhook_url=webhook_url,
                )
            )
        )

    def run_workflow(
        self,
        workflow_id: str | int,
        inputs: NodeInputs,
        *,
        instance_type: str | None = None,
        use_personal_queue: bool | None = None,
        add_metadata: bool | None = None,
    ) -> JobResult:
        """Run a workflow and wait; blocking ``RunningHub.run_workflow``."""
        return self._call(
            lambda: self._client.run_workflow(
                workflow_id,
                inputs,
                instance_type=instance_type,
                use_personal_queue=use_personal_queue,
                add_metadata=add_metadata,
            )
        )

    def price(self, model: str, params: Mapping[str, Any]) -> Price:
        """What a call would cost; blocking ``RunningHub.price``."""
        return self._call(lambda: self._client.price(model, params))

    def webhook_detail(self, task_id: str) -> WebhookDetail:
        """A task's webhook delivery; blocking ``RunningHub.webhook_detail``."""
        return self._call(lambda: self._client.webhook_detail(task_id))

    def resend_webhook(self, task_id: str, *, webhook_url: str | None = None) -> None:
        """Send a task's webhook again; blocking ``RunningHub.resend_webhook``."""
        return self._call(lambda: self._client.resend_webhook(task_id, webhook_url=webhook_url))

    def api_keys(self) -> tuple[ApiKeyInfo, ...]:
        """The account's API keys; blocking ``RunningHub.api_keys``."""
        return self._call(self._client.api_keys)

    def resources(
        self,
        resource_type: str | None = None,
        *,
        name: str | None = None,
        base_models: Sequence[str] | str = (),
        tags: Sequence[int] | int = (),
        page: int = 1,
        page_size: int = 10,
    ) -> ResourcePage:
        """Models and LoRAs; blocking ``RunningHub.resources``."""
        return self._call(
            lambda: self._client.resources(
                resource_type,
                name=name,
                base_models=base_models,
                tags=tags,
                page=page,
                page_size=page_size,
            )
        )

    def upload_lora(self, source: Any, *, name: str) -> LoraUpload:
        """Upload a LoRA; blocking ``RunningHub.upload_lora``."""
        return self._call(lambda: self._client.upload_lora(source, name=name))

    def request(self, method: str, path: str, json: Any = None) -> Any:
        """Any RunningHub route; blocking ``RunningHub.request``."""
        return self._call(lambda: self._client.request(method, path, json))


class SyncFiles:
    """Uploads, the image helpers, downloads and reads, blocking."""

    if TYPE_CHECKING:
        _client: AsyncRunningHub

        def _call(self, fn: Callable[[], Awaitable[_T]]) -> _T: ...

        def _job(self, job: AsyncJob) -> SyncJob: ...

        def _iterate(self, make: Callable[[], AsyncIterator[_T]]) -> Generator[_T, None, None]: ...

    def upload(
        self,
        source: os.PathLike[str] | bytes | BinaryIO,
        *,
        filename: str | None = None,
        max_bytes: int = _uploads.MAX_UPLOAD_BYTES,
    ) -> UploadedFile:
        """Upload a local file; blocking ``runninghub_async.RunningHub.upload``."""
        return self._call(
            lambda: self._client.upload(source, filename=filename, max_bytes=max_bytes)
        )

    def submit_text_to_image(
        self,
        prompt: str,
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        webhook_url: str | None = None,
    ) -> SyncJob:
        """Submit a text-to-image job; see ``RunningHub.submit_text_to_image``."""
        job = self._call(
            lambda: self._client.submit_text_to_image(
                prompt,
                model=model,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
                webhook_url=webhook_url,
            )
        )
        return self._job(job)

    def text_to_image(
        self,
        prompt: str,
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> JobResult:
        """Generate an image and wait for it; see ``RunningHub.text_to_image``."""
        return self._call(
            lambda: self._client.text_to_image(
                prompt, model=model, aspect_ratio=aspect_ratio, resolution=resolution
            )
        )

    def submit_edit_image(
        self,
        prompt: str,
        images: Sequence[ImageInput],
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        webhook_url: str | None = None,
    ) -> SyncJob:
        """Submit an image edit job; see ``RunningHub.submit_edit_image``."""
        job = self._call(
            lambda: self._client.submit_edit_image(
                prompt,
                images,
                model=model,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
                webhook_url=webhook_url,
            )
        )
        return self._job(job)

    def edit_image(
        self,
        prompt: str,
        images: Sequence[ImageInput],
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> JobResult:
        """Edit images and wait for the result; see ``RunningHub.edit_image``."""
        return self._call(
            lambda: self._client.edit_image(
                prompt, images, model=model, aspect_ratio=aspect_ratio, resolution=resolution
            )
        )

    def download(
        self,
        source: JobResult | Output | Iterable[JobResult | Output],
        dest_dir: str | os.PathLike[str],
        *,
        concurrency: int = 4,
    ) -> list[pathlib.Path]:
        """Download result files; blocking ``runninghub_async.RunningHub.download``."""
        return self._call(lambda: self._client.download(source, dest_dir, concurrency=concurrency))

    def to_image(self, output: Output, *, max_bytes: int = 512 * 1024 * 1024) -> Any:
        """One output as a PIL image; blocking ``runninghub_async.RunningHub.to_image``."""
        return self._call(lambda: self._client.to_image(output, max_bytes=max_bytes))

    def read(self, output: Output, *, max_bytes: int = 512 * 1024 * 1024) -> bytes:
        """One output's bytes; blocking ``runninghub_async.RunningHub.read``."""
        return self._call(lambda: self._client.read(output, max_bytes=max_bytes))

    def stream(self, output: Output) -> Generator[bytes, None, None]:
        """One output's bytes, chunk by chunk; see ``runninghub_async.RunningHub.stream``.

        Stopping the loop early closes the download.
        """
        return self._iterate(lambda: self._client.stream(output))
