"""Legacy task and asset routes (``apiKey`` in the body, ``{code, msg, data}`` answers).

* ``POST /task/openapi/status`` ``{apiKey, taskId}``: ``data`` is the bare status string.
* ``POST /task/openapi/outputs`` ``{apiKey, taskId}``: ``data`` lists
  ``{fileUrl, fileType, taskCostTime, nodeId, thirdPartyConsumeMoney,
  consumeMoney, consumeCoins}`` once SUCCESS; 813 while QUEUED, 804 while
  RUNNING, 805 with ``data.failedReason`` once FAILED or CANCEL.
* ``POST /task/openapi/upload``: multipart ``apiKey``, ``fileType``, ``file`` ->
  ``data {fileName: "api/<sha>.<ext>", fileType}``.
* ``POST /api/openapi/getJsonApiFormat`` ``{apiKey, workflowId}`` -> ``data.prompt``,
  the API-format workflow as a JSON string.
* ``GET /api/webapp/apiCallDemo?apiKey=..&webappId=..`` -> ``data.nodeInfoList`` and
  the app's name, covers, tags and a curl example.

Unknown task: 807 ``APIKEY_TASK_NOT_FOUND`` (another key's task counts as
unknown).  Bad ``apiKey``: 806, except on upload, which answers HTTP 401
``{"code": -1, "msg": "ApiKey verification failed"}`` as observed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import BodyPartReader, web

from ._bodies import envelope, query_body
from ._context import RouteContext, json_response, task_id_of
from ._endpoints import price_of
from ._registry import Registry
from ._state import TaskRecord

__all__ = ["Legacy", "legacy_outputs"]

_CHUNK = 64 * 1024
_WAITING = {"QUEUED": (813, "APIKEY_TASK_IS_QUEUED"), "RUNNING": (804, "APIKEY_TASK_IS_RUNNING")}


def legacy_outputs(record: TaskRecord) -> list[dict[str, Any]]:
    """The ``data`` list legacy outputs answers for a SUCCESS task.

    Built from the v2 query answer so that both APIs always describe the same files.
    """
    queried = query_body(record.snapshot(), price_of(record.endpoint, record.params))
    usage = queried["usage"] or {}
    return [
        {
            "fileUrl": item.get("url"),
            "fileType": item.get("outputType"),
            "taskCostTime": usage.get("taskCostTime", "0"),
            "nodeId": item.get("nodeId"),
            "thirdPartyConsumeMoney": usage.get("thirdPartyConsumeMoney"),
            "consumeMoney": usage.get("consumeMoney"),
            "consumeCoins": usage.get("consumeCoins"),
        }
        for item in queried["results"] or ()
    ]


class Legacy:
    """Handlers of the legacy task, upload, workflow and app-demo routes."""

    def __init__(self, ctx: RouteContext, registry: Registry) -> None:
        self._ctx = ctx
        self._registry = registry

    async def _own_task(self, request: web.Request) -> TaskRecord | web.Response:
        ctx = self._ctx
        asked = await ctx.legacy_task(request)
        if isinstance(asked, web.Response):
            return asked
        key, task_id = asked
        record = ctx.book.get(task_id)
        if record is None or record.api_key != key:
            return ctx.legacy_error(807, "APIKEY_TASK_NOT_FOUND")
        return record

    async def status(self, request: web.Request) -> web.Response:
        """``POST /task/openapi/status``: ``{"code": 0, "msg": "", "data": "RUNNING"}``."""
        record = await self._own_task(request)
        if isinstance(record, web.Response):
            return record
        return json_response(envelope(0, "", record.status))

    async def outputs(self, request: web.Request) -> web.Response:
        """``POST /task/openapi/outputs``: the files once SUCCESS, else why not yet or never."""
        record = await self._own_task(request)
        if isinstance(record, web.Response):
            return record
        if record.status in _WAITING:
            code, msg = _WAITING[record.status]
            return self._ctx.legacy_error(code, msg)
        if record.status != "SUCCESS":
            data = {"failedReason": dict(record.failed_reason)}
            return self._ctx.legacy_error(805, "APIKEY_TASK_STATUS_ERROR", data)
        return json_response(envelope(0, "success", legacy_outputs(record)))

    async def upload(self, request: web.Request) -> web.Response:
        """``POST /task/openapi/upload``: multipart ``apiKey``, ``fileType``, ``file``."""
        ctx = self._ctx
        if not request.content_type.startswith("multipart/"):
            return ctx.legacy_error(301, "PARAMS_INVALID: a multipart body is required")
        fields: dict[str, str] = {}
        data: bytearray | None = None
        filename = ""
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    await part.release()
                elif part.name == "file":
                    filename = part.filename or ""
                    data = await self._read_limited(part)
                    if data is None:
                        return ctx.legacy_error(809, "APIKEY_FILE_SIZE_EXCEEDED")
                elif part.name in ("apiKey", "fileType"):
                    fields[part.name] = await part.text()
                else:
                    await part.release()
        except ValueError:
            return ctx.legacy_error(301, "PARAMS_INVALID: bad multipart body")
        key = fields.get("apiKey", "")
        if key not in ctx.keys:
            return ctx.reject(-1, {"code": -1, "msg": "ApiKey verification failed"}, status=401)
        if not data:
            return ctx.legacy_error(301, "PARAMS_INVALID: a non-empty 'file' part is required")
        ext = filename.rpartition(".")[2].lower() if "." in filename else "bin"
        file_name = f"api/{hashlib.sha256(data).hexdigest()[:32]}.{ext}"
        ctx.uploads[file_name] = bytes(data)
        ctx.book.counters.uploads += 1
        file_type = fields.get("fileType") or "input"
        return json_response(envelope(0, "success", {"fileName": file_name, "fileType": file_type}))

    async def _read_limited(self, part: BodyPartReader) -> bytearray | None:
        limit = self._ctx.config.upload_max_bytes
        data = bytearray()
        while chunk := await part.read_chunk(_CHUNK):
            if len(data) + len(chunk) > limit:
                return None  # stop reading: never hold more than the limit
            data += chunk
        return data

    async def workflow_json(self, request: web.Request) -> web.Response:
        """``POST /api/openapi/getJsonApiFormat``: ``data.prompt`` is a JSON string."""
        ctx = self._ctx
        body = await ctx.json_body(request)
        if ctx.body_key(body) is None:
            return ctx.bad_legacy_key()
        workflow_id = task_id_of(body, "workflowId")
        if workflow_id is None:
            return ctx.legacy_error(301, "PARAMS_INVALID: workflowId is required")
        prompt = self._registry.prompt_json(workflow_id)
        if prompt is None:
            return ctx.legacy_error(380, "WORKFLOW_NOT_EXISTS")
        return json_response(envelope(0, "success", {"prompt": prompt}))

    async def app_demo(self, request: web.Request) -> web.Response:
        """``GET /api/webapp/apiCallDemo?apiKey=..&webappId=..``."""
        ctx = self._ctx
        query = request.query
        if query.get("apiKey", "") not in ctx.keys:
            return ctx.bad_legacy_key()
        webapp_id = query.get("webappId", "")
        if not webapp_id:
            return ctx.legacy_error(301, "PARAMS_INVALID: webappId is required")
        app = self._registry.apps.get(webapp_id)
        if app is None:
            return ctx.legacy_error(901, "WEBAPP_NOT_EXISTS")
        nodes = [node.as_json() for node in app.nodes]
        example = {
            "webappId": webapp_id,
            "apiKey": "<your api key>",
            "nodeInfoList": [
                {"nodeId": n["nodeId"], "fieldName": n["fieldName"], "fieldValue": n["fieldValue"]}
                for n in nodes
            ],
        }
        curl = (
            f"curl --location --request POST '{ctx.book.base_url}/task/openapi/ai-app/run' "
            "--header 'Content-Type: application/json' "
            f"--data-raw '{json.dumps(example, ensure_ascii=False)}'"
        )
        data = {
            "curl": curl,
            "accessEncrypted": False,
            "webappName": app.name,
            "statisticsInfo": {
                "likeCount": "0",
                "downloadCount": "0",
                "useCount": "0",
                "pv": "0",
                "collectCount": "0",
            },
            "nodeInfoList": nodes,
            "covers": [],
            "tags": [],
        }
        return json_response(envelope(0, "success", data))
