"""The aiohttp application: RunningHub's core routes, behind `FaultMiddleware`.

The routes beyond these (apps, workflows, legacy, extras) are `ExtraRoutes`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import MutableMapping
from typing import Any

from aiohttp import BodyPartReader, web

from .._catalog import violations
from ._bodies import (
    envelope,
    join_problems,
    output_key,
    query_body,
    query_error,
    submit_body,
    task_error,
    upload_envelope,
)
from ._config import FakeConfig
from ._control import add_control_routes
from ._endpoints import catalogued, is_known, is_standard_model, price_of
from ._faults import FaultPlan
from ._middleware import FaultMiddleware
from ._outputs import CONTENT_TYPES, render_file
from ._ratelimit import KeyedRateLimiter
from ._state import TaskBook

__all__ = ["Routes"]

_dumps = functools.partial(json.dumps, ensure_ascii=False)
_CHUNK = 64 * 1024
_MAX_JSON_BODY = 128 * 1024 * 1024  # data-URI images make submit bodies large
_AUTH_FAILED = "ApiKey verification failed: API Key不存在"

# extension -> (upload "type", Content-Type when served back)
_MEDIA: dict[str, tuple[str, str]] = {
    "png": ("image", "image/png"),
    "jpg": ("image", "image/jpeg"),
    "jpeg": ("image", "image/jpeg"),
    "webp": ("image", "image/webp"),
    "mp3": ("audio", "audio/mpeg"),
    "wav": ("audio", "audio/wav"),
    "flac": ("audio", "audio/flac"),
    "mp4": ("video", "video/mp4"),
    "avi": ("video", "video/x-msvideo"),
    "mov": ("video", "video/quicktime"),
    "mkv": ("video", "video/x-matroska"),
    "zip": ("zip", "application/zip"),
}


class _Invalid:
    """Marks a body that is not JSON."""


_INVALID = _Invalid()


def _json(body: object) -> web.Response:
    return web.json_response(body, dumps=_dumps)


def _sniff(data: bytes) -> str | None:
    """The extension a file's magic bytes say it has, for uploads without a usable name."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE"):
        return "webp" if data[8:12] == b"WEBP" else "wav"
    if data.startswith((b"ID3", b"\xff\xfb", b"\xff\xf3")):
        return "mp3"
    if data.startswith(b"fLaC"):
        return "flac"
    if data[4:8] == b"ftyp":
        return "mp4"
    if data.startswith(b"PK\x03\x04"):
        return "zip"
    return None


def _task_id_of(body: object, field: str) -> str | None:
    value = body.get(field) if isinstance(body, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # the legacy schema calls it int64
    return value if isinstance(value, str) and value else None


class Routes:
    """Request handlers over the fake's shared state; `build_app` wires them up."""

    def __init__(
        self,
        *,
        config: FakeConfig,
        book: TaskBook,
        faults: FaultPlan,
        uploads: MutableMapping[str, bytes],
        limiter: KeyedRateLimiter | None = None,
    ) -> None:
        self._config = config
        self._keys = frozenset(config.api_keys)
        self._book = book
        self._faults = faults
        self._uploads = uploads
        self._limiter = limiter if limiter is not None else KeyedRateLimiter(config.rate_limit)
        self._middleware = FaultMiddleware(book, faults)

    def build_app(self) -> web.Application:
        """The aiohttp application serving every route."""
        app = web.Application(middlewares=[self._middleware.handle], client_max_size=_MAX_JSON_BODY)
        add = app.router
        add.add_post("/openapi/v2/query", self._query, name="query")
        add.add_post("/openapi/v2/media/upload/binary", self._upload, name="upload")
        add.add_get("/openapi/v2/queue/status", self._queue_status, name="queue_status")
        add.add_post("/openapi/v2/{path:.+}", self._submit, name="submit")
        add.add_post("/uc/openapi/accountStatus", self._account, name="account")
        add.add_post("/task/openapi/cancel", self._cancel, name="cancel")
        add.add_get("/files/outputs/{task_id}/{name}", self._output_file, name="download.outputs")
        add.add_get("/files/uploads/{name:.+}", self._uploaded_file, name="download.uploads")
        add_control_routes(app, self._book, self._faults)
        return app

    # -- helpers -----------------------------------------------------------------

    def _bearer(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token in self._keys else None

    def _reject(self, code: str, body: dict[str, Any]) -> web.Response:
        self._book.counters.rejections[code] += 1
        return _json(body)

    @staticmethod
    async def _json_body(request: web.Request) -> object:
        raw = await request.read()
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _INVALID

    # -- v2 task endpoints -------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        config, book = self._config, self._book
        book.counters.submit_requests += 1
        path = request.match_info["path"]
        key = self._bearer(request)
        if key is None:
            return self._reject("1002", task_error("1002"))
        if not self._limiter.allow(key):
            return self._reject("1003", task_error("1003"))
        spec = catalogued(path)
        if spec is None and not is_known(path):
            return self._reject("1000", task_error("1000"))
        if is_standard_model(path) and config.key_type(key) != "SHARED":
            return self._reject("1014", task_error("1014"))
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return self._reject(
                "1007", task_error("1007", join_problems(["the body must be a JSON object"]))
            )
        params = dict(body)
        webhook_url = params.pop("webhookUrl", None) or None
        if webhook_url is not None and not (
            isinstance(webhook_url, str) and webhook_url.startswith(("http://", "https://"))
        ):
            problem = f"webhookUrl={webhook_url!r} must be an http(s) URL"
            return self._reject("1007", task_error("1007", join_problems([problem])))
        if config.validate and spec is not None:
            problems = violations(spec, params)
            if problems:
                return self._reject("1007", task_error("1007", join_problems(problems)))
        limit = config.concurrency_limit
        if limit is not None and book.live_count(key) >= limit:
            return self._reject("421", task_error("421"))
        record = book.create(key, path, params, webhook_url)
        return _json(submit_body(record.snapshot(), book.client_id()))

    async def _query(self, request: web.Request) -> web.Response:
        book = self._book
        key = self._bearer(request)
        if key is None:
            return self._reject("1002", query_error("", "1002"))
        if not self._limiter.allow(key):
            return self._reject("1003", query_error("", "1003"))
        book.counters.queries += 1
        task_id = _task_id_of(await self._json_body(request), "taskId")
        if task_id is None:
            message = join_problems(["taskId is required"])
            return self._reject("1007", query_error("", "1007", message))
        record = book.get(task_id)
        if record is None or record.api_key != key:
            return self._reject("1004", query_error(task_id, "1004"))
        book.count_query(record)
        price = price_of(record.endpoint, record.params, len(record.outputs))
        return _json(query_body(record.snapshot(), price))

    # -- v2 management endpoints -------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        key = self._bearer(request)
        if key is None:
            return self._reject("401", upload_envelope(401, _AUTH_FAILED))
        if not self._limiter.allow(key):
            return self._reject("1003", upload_envelope(1003, "rate limit exceeded"))
        missing = upload_envelope(301, "PARAMS_INVALID: multipart field 'file' is required")
        if not request.content_type.startswith("multipart/"):
            return self._reject("301", missing)
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if isinstance(part, BodyPartReader) and part.name == "file":
                    return await self._store_upload(part)
                await part.release()
        except ValueError:
            return self._reject("301", upload_envelope(301, "PARAMS_INVALID: bad multipart body"))
        return self._reject("301", missing)

    async def _store_upload(self, part: BodyPartReader) -> web.Response:
        limit = self._config.upload_max_bytes
        data = bytearray()
        while chunk := await part.read_chunk(_CHUNK):
            if len(data) + len(chunk) > limit:
                # Stop reading here: never hold more than the limit in memory.
                message = "APIKEY_FILE_SIZE_EXCEEDED | 文件大小超出限制"
                return self._reject("809", upload_envelope(809, message))
            data += chunk
        filename = part.filename or ""
        ext = filename.rpartition(".")[2].lower() if "." in filename else ""
        if ext not in _MEDIA:
            ext = _sniff(bytes(data[:16])) or ""
        if not data or ext not in _MEDIA:
            message = "PARAMS_INVALID: empty or unsupported file | 文件为空或格式不支持"
            return self._reject("301", upload_envelope(301, message))
        digest = hashlib.sha256(data).hexdigest()[:32]
        file_name = f"openapi/{digest}.{ext}"
        self._uploads[file_name] = bytes(data)
        self._book.counters.uploads += 1
        info = {
            "type": _MEDIA[ext][0],
            "download_url": f"{self._book.base_url}/files/uploads/{file_name}",
            "fileName": file_name,
            "size": str(len(data)),
        }
        return _json(upload_envelope(0, "success", info))

    async def _queue_status(self, request: web.Request) -> web.Response:
        key = self._bearer(request)
        if key is None:
            return self._reject("401", envelope(401, _AUTH_FAILED))
        if not self._limiter.allow(key):
            return self._reject("1003", envelope(1003, "rate limit exceeded"))
        live, queued = self._book.live_count(key), self._book.queued_count(key)
        data = {
            "apiKeyType": self._config.key_type(key),
            "concurrentLimit": str(self._config.concurrent_limit_report),
            "runningCount": str(live - queued),
            "queuedCount": str(queued),
            "totalCurrentTasks": str(live),
        }
        return _json(envelope(0, "success", data))

    # -- legacy endpoints ----------------------------------------------------------

    async def _account(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        key = body.get("apikey") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            return self._reject("1601", envelope(1601, "param apiKey is required"))
        if key not in self._keys:
            return self._reject("806", envelope(806, "APIKEY_USER_NOT_FOUND"))
        data = {
            "remainCoins": self._config.remain_coins,
            "currentTaskCounts": str(self._book.live_count(key)),
            "remainMoney": self._config.remain_money,
            "currency": self._config.currency,
            "apiType": self._config.key_type(key),
        }
        return _json(envelope(0, "success", data))

    async def _cancel(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        key = body.get("apiKey") if isinstance(body, dict) else None
        if not isinstance(key, str) or key not in self._keys:
            return self._reject("806", envelope(806, "APIKEY_USER_NOT_FOUND"))
        task_id = _task_id_of(body, "taskId")
        if task_id is None:
            return self._reject("301", envelope(301, "PARAMS_INVALID"))
        record = self._book.get(task_id)
        if record is None or record.api_key != key:
            code = self._config.cancel_not_found_code
            return self._reject(str(code), envelope(code, "TASK_NOT_FOUNED"))
        if record.finished_at is not None:
            return self._reject("805", envelope(805, "APIKEY_TASK_STATUS_ERROR"))
        self._book.cancel(task_id)
        return _json(envelope(0, "success"))

    # -- files ---------------------------------------------------------------------

    def _count_file_request(self, request: web.Request) -> None:
        if "Authorization" in request.headers:
            self._book.counters.file_requests_with_auth += 1

    async def _output_file(self, request: web.Request) -> web.Response:
        self._count_file_request(request)
        task_id, name = request.match_info["task_id"], request.match_info["name"]
        record = self._book.get(task_id)
        url = f"{self._book.base_url}/files/outputs/{task_id}/{name}"
        if record is None or url not in record.outputs:
            raise web.HTTPNotFound()
        ext = name.rpartition(".")[2]
        body = render_file(ext, output_key(record.snapshot(), url))
        self._book.counters.downloads += 1
        return web.Response(body=body, content_type=CONTENT_TYPES[ext])

    async def _uploaded_file(self, request: web.Request) -> web.Response:
        self._count_file_request(request)
        name = request.match_info["name"]
        data = self._uploads.get(name)
        if data is None:
            raise web.HTTPNotFound()
        self._book.counters.downloads += 1
        content_type = _MEDIA.get(name.rpartition(".")[2], ("", "application/octet-stream"))[1]
        return web.Response(body=data, content_type=content_type)
