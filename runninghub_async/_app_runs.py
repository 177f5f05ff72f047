"""AI-app and ComfyUI-workflow runs on `RunningHub` (a mixin of ``ApiExtras``).

They go through ``submit``, so they share its slots, poller, deadlines and
exactly-once rules, and return the same `Job`.  Inputs are checked by ``_nodes``
before anything is uploaded; local files are measured, then uploaded (a few at
a time, each content once), and their upload's ``fileName`` is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from . import _uploads
from ._concurrency import run_all
from ._errors import invalid_parameter
from ._models import JobResult
from ._nodes import NodeInput, NodeInputs, is_local_file, node_info_list, parse_inputs, run_path
from ._prepare import LOCAL_PLACEHOLDER, check_encodable, check_webhook_url

if TYPE_CHECKING:
    from ._api import Api
    from ._config import ClientConfig
    from ._job import Job

__all__ = ["AppRuns"]

_UPLOAD_CONCURRENCY: Final = 4
# runninghub-api.md 3.5: "default" and "plus" (48 GB) are documented; "ultra"
# (84 GB) is reported by one client only.  ``validate=False`` sends any str.
_INSTANCE_TYPES: Final = ("default", "plus", "ultra")


def _run_options(
    validate: bool,
    instance_type: object,
    use_personal_queue: object,
    add_metadata: object = None,
) -> dict[str, Any]:
    """The run options that are set, checked: a paid submit never carries a typo.

    Raises:
        TypeError: an option of the wrong type.
        InvalidParametersError: an unknown *instance_type* (unless not *validate*).
    """
    if instance_type is not None:
        if not isinstance(instance_type, str):
            raise TypeError(
                f"instance_type must be a str or None, got {type(instance_type).__name__}"
            )
        if validate and instance_type not in _INSTANCE_TYPES:
            raise invalid_parameter(
                "instance_type",
                "is not an instance type RunningHub documents",
                value=instance_type,
                allowed=", ".join(_INSTANCE_TYPES),
            )
    for name, flag in (("use_personal_queue", use_personal_queue), ("add_metadata", add_metadata)):
        if flag is not None and not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool or None, got {type(flag).__name__} {flag!r}")
    options = {
        "instanceType": instance_type,
        "usePersonalQueue": use_personal_queue,
        "addMetadata": add_metadata,
    }
    return {name: value for name, value in options.items() if value is not None}


class AppRuns:
    """``submit_app``/``run_app`` and ``submit_workflow``/``run_workflow``."""

    if TYPE_CHECKING:
        _config: ClientConfig
        _upload_cache: _uploads.UploadCache

        @property
        def _api(self) -> Api: ...

        async def submit(
            self, endpoint: str, params: Mapping[str, Any], *, webhook_url: str | None = None
        ) -> Job: ...

    async def _run_body(
        self, path: str, inputs: NodeInputs, options: dict[str, Any]
    ) -> dict[str, Any]:
        """The run body: inputs checked, local files uploaded (each content once).

        *options* are checked already (`_run_options`).
        """
        items = parse_inputs(inputs)
        locals_ = [i for i, item in enumerate(items) if is_local_file(item.value)]
        if locals_:
            # What ``submit`` would refuse to encode is refused before the uploads.
            plain = [
                NodeInput(item.node_id, item.field_name, LOCAL_PLACEHOLDER)
                if is_local_file(item.value)
                else item
                for item in items
            ]
            check_encodable({**options, "nodeInfoList": node_info_list(plain)}, path)
            api = self._api
            measured = {
                i: await _uploads.inspect_local(items[i].value) for i in locals_
            }  # every file measured before the first byte is sent

            async def upload(index: int) -> None:
                item = items[index]
                label = f"{item.node_id}.{item.field_name}"
                done = await _uploads.upload_local(
                    api, self._upload_cache, measured[index], field=label
                )
                items[index] = NodeInput(item.node_id, item.field_name, done.file_name)

            await run_all(locals_, upload, limit=_UPLOAD_CONCURRENCY)
        return {**options, "nodeInfoList": node_info_list(items)}

    async def submit_app(
        self,
        webapp_id: str | int,
        inputs: NodeInputs,
        *,
        instance_type: str | None = None,
        use_personal_queue: bool | None = None,
        webhook_url: str | None = None,
    ) -> Job:
        """Run an AI app (``/openapi/v2/run/ai-app/<webapp_id>``) and return its job.

        It is a submit like any other: the same slots, poller, deadline and
        exactly-once rules, and the same `Job`.

        Args:
            webapp_id: the app's id (digits).
            inputs: `NodeInput` items, or ``{"<nodeId>.<fieldName>": value}``;
                ``{}`` runs the app with its defaults.  A local file
                (``pathlib.Path``, bytes, binary file) is uploaded first and its
                ``fileName`` sent; numbers and booleans are sent as text.
            instance_type: ``"default"``, ``"plus"`` (a 48 GB GPU) or ``"ultra"``
                (84 GB; reported, not documented); with ``validate=False``, any str.
            use_personal_queue: queue over the concurrency limit instead of refusing.
            webhook_url: a URL RunningHub calls when the task ends.

        Raises:
            InvalidParametersError: a bad id, input key or value, *instance_type*
                or *webhook_url* (nothing was sent or uploaded), or RunningHub
                refused the inputs (803/1101).
            TypeError: *inputs* is not inputs, or an option has the wrong type.
            OSError: a local file cannot be read.
            Everything ``upload`` and ``submit`` raise.
        """
        if webhook_url is not None:
            webhook_url = check_webhook_url(webhook_url)
        path = run_path("ai-app", webapp_id)
        options = _run_options(self._config.validate, instance_type, use_personal_queue)
        body = await self._run_body(path, inputs, options)
        return await self.submit(path, body, webhook_url=webhook_url)

    async def run_app(
        self,
        webapp_id: str | int,
        inputs: NodeInputs,
        *,
        instance_type: str | None = None,
        use_personal_queue: bool | None = None,
    ) -> JobResult:
        """Run an AI app and wait for its result (``submit_app`` then ``Job.wait``).

        Raises:
            Everything ``submit_app`` and ``Job.wait`` raise.
        """
        job = await self.submit_app(
            webapp_id, inputs, instance_type=instance_type, use_personal_queue=use_personal_queue
        )
        return await job.wait()

    async def submit_workflow(
        self,
        workflow_id: str | int,
        inputs: NodeInputs,
        *,
        instance_type: str | None = None,
        use_personal_queue: bool | None = None,
        add_metadata: bool | None = None,
        webhook_url: str | None = None,
    ) -> Job:
        """Run a ComfyUI workflow (``/openapi/v2/run/workflow/<workflow_id>``); its job.

        As ``submit_app``; *inputs* may set any input of any node of the
        workflow (``{"6.text": "a fox", "3.seed": 42}``), and *add_metadata*
        asks RunningHub to embed the workflow in the output images.

        Raises:
            Everything ``submit_app`` raises.
        """
        if webhook_url is not None:
            webhook_url = check_webhook_url(webhook_url)
        path = run_path("workflow", workflow_id)
        options = _run_options(
            self._config.validate, instance_type, use_personal_queue, add_metadata
        )
        body = await self._run_body(path, inputs, options)
        return await self.submit(path, body, webhook_url=webhook_url)

    async def run_workflow(
        self,
        workflow_id: str | int,
        inputs: NodeInputs,
        *,
        instance_type: str | None = None,
        use_personal_queue: bool | None = None,
        add_metadata: bool | None = None,
    ) -> JobResult:
        """Run a ComfyUI workflow and wait for its result (``submit_workflow`` + ``wait``).

        Raises:
            Everything ``submit_workflow`` and ``Job.wait`` raise.
        """
        job = await self.submit_workflow(
            workflow_id,
            inputs,
            instance_type=instance_type,
            use_personal_queue=use_personal_queue,
            add_metadata=add_metadata,
        )
        return await job.wait()
