"""The blocking twins of the async client's AI-app, workflow and account-level calls.

A mixin of ``runninghub_async.sync.RunningHub``, so that module stays readable;
each method runs its async twin on the client's own event loop thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._extras_models import ApiKeyInfo, LoraUpload, Price, ResourcePage, WebhookDetail
from ._models import JobResult
from ._nodes import NodeInputs

if TYPE_CHECKING:
    from ._client import RunningHub as AsyncRunningHub
    from ._job import Job as AsyncJob

__all__ = ["SyncExtras"]

_T = TypeVar("_T")


class SyncExtras:
    """``submit_app``, ``run_workflow``, ``price``, ``request``, ... blocking."""

    if TYPE_CHECKING:
        _client: AsyncRunningHub

        def _call(self, fn: Callable[[], Awaitable[_T]]) -> _T: ...

        def _job(self, job: AsyncJob) -> Any: ...

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
        base_models: Sequence[str] = (),
        tags: Sequence[int] = (),
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
