"""Every RunningHub route the client calls: URL, body, envelope, error shapes, structuring.

One parser reads every documented answer shape into a value or one of our errors:

* v2 task-shaped ``{"taskId", "status", "errorCode", "errorMessage", ...}``;
* v2 short ``{"errorCode": "421", "errorMessage": "..."}`` (no status, no taskId);
* legacy envelopes ``{"code", "msg"|"message", "data"}``.

An error code is recognised in any of them, so a 421 is absorbed and a 1004 is
"task not found" whatever shape it came in.  Text the server sends is scrubbed of
the API key before it can reach an exception, a log line or a result.  JSON is
decoded with a nesting bound; anything unreadable is a `ProtocolError`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import cattrs

from ._errors import (
    APIError,
    ProtocolError,
    RateLimitedError,
    api_error,
    http_error,
)
from ._extras_models import ApiKeyInfo, LoraGrant, Price, ResourcePage, WebhookDetail
from ._fast_wire import fast_snapshot
from ._json import decode_json, depth_ok, encode_json, is_task_id, too_deep
from ._models import AccountStatus, QueueStatus, TaskSnapshot, TaskStatus, UploadedFile
from ._transport import Answer, FormFile, Transport

__all__ = ["Api"]

log = logging.getLogger("runninghub_async")
T = TypeVar("T")

QUERY_PATH: Final = "/openapi/v2/query"
UPLOAD_PATH: Final = "/openapi/v2/media/upload/binary"
QUEUE_PATH: Final = "/openapi/v2/queue/status"
ACCOUNT_PATH: Final = "/uc/openapi/accountStatus"
CANCEL_PATH: Final = "/task/openapi/cancel"
PRICE_PREFIX: Final = "/openapi/v2/price-preview/"
WEBHOOK_DETAIL_PATH: Final = "/task/openapi/getWebhookDetail"
WEBHOOK_RETRY_PATH: Final = "/task/openapi/retryWebhook"
API_KEYS_PATH: Final = "/openapi/v2/api-key/list"
RESOURCES_PATH: Final = "/openapi/v2/resource/list"
LORA_URL_PATH: Final = "/api/openapi/getLoraUploadUrl"
_NO_ERROR: Final = frozenset({"", "0", "200", "None"})
_ENDED: Final = frozenset({"SUCCESS", "FAILED", "CANCEL"})
# A body with one of these statuses is a task state even when it carries an errorCode.
_TASK_STATES: Final = frozenset(s.value for s in TaskStatus if s is not TaskStatus.UNKNOWN)


def _code(value: Any) -> str:
    return "" if value is None else _text(value).strip()


def _text(value: Any) -> str:
    """A scalar as text; a container only by its type (an answer's nesting is unchecked here)."""
    return str(value) if isinstance(value, str | int | float) else f"<{type(value).__name__}>"


class Api:
    """RunningHub's routes over a `Transport`; *throttled* hears every rate rejection."""

    def __init__(
        self,
        transport: Transport,
        converter: cattrs.Converter,
        *,
        api_key: str,
        throttled: Callable[[float | None], None],
    ) -> None:
        self.transport = transport
        self._converter = converter
        self._key = api_key
        self._key_bytes = api_key.encode()
        self._throttled = throttled

    # -- parsing ----------------------------------------------------------------------

    def _parse(self, answer: Answer, path: str, *, check_depth: bool = True) -> Any:
        """The decoded body of *answer*, or the error it carries (raised).

        Without *check_depth* the caller must check the nesting before recursing into it.
        """
        status = answer.status
        if 300 <= status < 400:
            raise ProtocolError(f"{path} answered with a redirect (HTTP {status}); not followed")
        body = answer.body
        # The key is scrubbed from the text should a server echo it; most answers
        # never contain it and are parsed as the bytes they came as.
        text = self._scrubbed(body) if self._key_bytes and self._key_bytes in body else body
        try:
            parsed = decode_json(text, path, check_depth=check_depth) if text else None
        except ProtocolError:
            if status >= 400:
                raise self._http(answer, path) from None
            raise
        error = self._error_in(parsed, path, status) if isinstance(parsed, dict) else None
        if error is None and (status >= 400 or status < 200):
            error = self._http(answer, path)
        if error is not None:
            if isinstance(error, RateLimitedError):
                self._throttled(answer.retry_after)
            raise error
        return parsed

    def _scrubbed(self, body: bytes) -> str:
        return self.transport.redact(body.decode("utf-8", "replace"))

    def _http(self, answer: Answer, path: str) -> APIError:
        error = http_error(answer.status, answer.reason, endpoint=path)
        if isinstance(error, RateLimitedError):
            self._throttled(answer.retry_after)
        return error

    @staticmethod
    def _error_in(parsed: dict[str, Any], path: str, status: int) -> APIError | None:
        """The error a body carries in any documented shape, or None."""
        http_status = status if status != 200 else None
        if "errorCode" in parsed:
            raw = parsed["errorCode"]
            if raw is None or raw == "":
                return None  # the usual answer: no error
            code = _code(raw)
            task_status = _code(parsed.get("status")).upper()
            # A FAILED task also carries an errorCode: that is a task state, not a refusal.
            if code not in _NO_ERROR and task_status not in _TASK_STATES:
                message = _text(parsed.get("errorMessage") or parsed.get("msg") or "")
                return api_error(code, message, endpoint=path, http_status=http_status)
            return None
        if "code" in parsed:
            code = _code(parsed.get("code"))
            if code not in _NO_ERROR:
                message = _text(parsed.get("msg") or parsed.get("message") or "")
                return api_error(code, message, endpoint=path, http_status=http_status)
        return None

    def structure(self, data: Any, cls: type[T], path: str) -> T:
        """*data* as a *cls*, or ProtocolError when it does not fit."""
        try:
            return self._converter.structure(data, cls)
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, RecursionError):
            raise ProtocolError(f"{path} answered with an unexpected shape") from None

    def _snapshot(self, parsed: Any, path: str) -> TaskSnapshot:
        if not isinstance(parsed, dict):
            raise ProtocolError(f"{path} answered with JSON that is not an object")
        # Every answer of every check comes here: the usual shapes skip the converter
        # (and the nesting check: they are read to a fixed depth, never recursed into).
        snapshot = fast_snapshot(parsed)
        if snapshot is not None:
            return snapshot
        if not depth_ok(parsed):
            raise too_deep(path)
        try:
            return self.structure(parsed, TaskSnapshot, path)
        except ProtocolError as exc:
            status = parsed.get("status")
            if status not in _ENDED:
                raise
            ended = ProtocolError(
                f"task {_text(parsed.get('taskId'))} ended ({status}) but {path}'s answer "
                f"could not be read: {exc}"
            )
            ended.task_ended = True
            raise ended from None

    def _envelope_data(self, parsed: Any, path: str) -> Any:
        if not isinstance(parsed, dict) or "code" not in parsed:
            raise ProtocolError(f"{path} answered without a code envelope")
        return parsed.get("data")

    # -- routes -----------------------------------------------------------------------

    async def submit(self, endpoint: str, body: bytes, *, paced: bool = False) -> TaskSnapshot:
        """POST the encoded *body* to ``/openapi/v2/<endpoint>`` once; never retried.

        *paced*: the caller already took this request's share of the rate budget.

        Raises:
            APIError: RunningHub refused the submit (the subclass says why).
            TransportError: no usable answer; ``request_sent`` says whether it left.
        """
        path = f"/openapi/v2/{endpoint}"
        # Owned: submits are sent from the submitter's own tasks (`_submit`).
        answer = await self.transport.exchange(
            "POST", path, body=body, owned=True, paced=paced
        )
        snapshot = self._snapshot(self._parse(answer, path, check_depth=False), path)
        if not is_task_id(snapshot.task_id):
            what = "no taskId" if not snapshot.task_id else f"taskId {_text(snapshot.task_id)}"
            raise ProtocolError(f"{path} accepted the submit but sent {what}")
        return snapshot

    def query(
        self, task_id: str, *, retry: bool = True, within: float | None = None
    ) -> Awaitable[TaskSnapshot]:
        """One ``/openapi/v2/query`` (retried on transient failures when *retry*); await it.

        *within* bounds each exchange (seconds), on top of the client's `Timeouts`.
        Without *retry* it is the poller's check: one exchange, from a task the
        client owns (the transport's close need not reach it).

        A task that FAILED is a snapshot, not an exception: the request worked.

        Raises:
            TaskNotFoundError: RunningHub does not know *task_id* (1004).
            APIError: another error code with no task status.
            TransportError: no usable answer.
        """
        if not retry:  # the poller's checks: no closure, no retry loop, no extra coroutine
            return self._query_once(task_id, within, owned=True)
        return self.transport.retrying(lambda: self._query_once(task_id, within), QUERY_PATH)

    async def _query_once(
        self, task_id: str, within: float | None, *, owned: bool = False
    ) -> TaskSnapshot:
        body = encode_json({"taskId": task_id})
        answer = await self.transport.exchange(
            "POST", QUERY_PATH, body=body, within=within, owned=owned
        )
        snapshot = self._snapshot(self._parse(answer, QUERY_PATH, check_depth=False), QUERY_PATH)
        if snapshot.task_id and snapshot.task_id != task_id:
            # A misrouted or lying answer: another task's outputs must not end this job.
            raise ProtocolError(
                f"{QUERY_PATH} for task {task_id} answered about task {_text(snapshot.task_id)}"
            )
        return snapshot

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: Callable[[], FormFile] | None = None,
        retry: bool = True,
    ) -> Any:
        """Any route: the decoded answer (errors in any documented shape raised).

        *form* makes a fresh multipart body per attempt.
        """
        body = None if json_body is None else encode_json(json_body)

        async def once() -> Any:
            answer = await self.transport.exchange(
                method, path, body=body, form=form() if form is not None else None
            )
            return self._parse(answer, path)

        return await (self.transport.retrying(once, path) if retry else once())

    async def envelope(self, method: str, path: str, *, json_body: Any = None) -> Any:
        """The ``data`` of a ``{code, msg, data}`` route."""
        return self._envelope_data(await self.call(method, path, json_body=json_body), path)

    async def cancel(self, task_id: str) -> None:
        """Ask RunningHub to cancel *task_id* (legacy route: the key goes in the body)."""
        # Not retried: a lost answer is settled by the query that follows a cancel.
        parsed = await self.call(
            "POST", CANCEL_PATH, json_body={"apiKey": self._key, "taskId": task_id}, retry=False
        )
        self._envelope_data(parsed, CANCEL_PATH)

    async def account(self) -> AccountStatus:
        """``/uc/openapi/accountStatus`` (it wants the key as ``apikey``)."""
        data = await self.envelope("POST", ACCOUNT_PATH, json_body={"apikey": self._key})
        return self.structure(data, AccountStatus, ACCOUNT_PATH)

    async def queue_status(self) -> QueueStatus:
        """The key's concurrency limit and load."""
        data = await self.envelope("GET", QUEUE_PATH)
        return self.structure(data, QueueStatus, QUEUE_PATH)

    async def upload(self, form: Callable[[], FormFile]) -> UploadedFile:
        """``/openapi/v2/media/upload/binary`` with a fresh body per attempt."""
        parsed = await self.call("POST", UPLOAD_PATH, form=form)
        return self.structure(self._envelope_data(parsed, UPLOAD_PATH), UploadedFile, UPLOAD_PATH)

    # -- the routes beyond tasks (``_extras``) ------------------------------------------

    async def price_preview(self, endpoint: str, body: bytes) -> Price | None:
        """``/openapi/v2/price-preview/<endpoint>`` with the submit body; None without a price.

        Read-only on RunningHub's side, so it is retried on transient failures.
        """
        path = PRICE_PREFIX + endpoint

        async def once() -> Any:
            answer = await self.transport.exchange("POST", path, body=body)
            return self._parse(answer, path)

        parsed = await self.transport.retrying(once, path)
        if not isinstance(parsed, dict):
            raise ProtocolError(f"{path} answered with JSON that is not an object")
        if parsed.get("estimatedPrice") in (None, ""):
            return None
        return self.structure(parsed, Price, path)

    async def legacy(self, path: str, body: dict[str, Any], *, retry: bool = True) -> Any:
        """The ``data`` of a legacy route, with the key in the body as ``apiKey``."""
        parsed = await self.call("POST", path, json_body={**body, "apiKey": self._key}, retry=retry)
        return self._envelope_data(parsed, path)

    async def webhook_detail(self, task_id: str) -> WebhookDetail:
        """``getWebhookDetail`` of *task_id*."""
        data = await self.legacy(WEBHOOK_DETAIL_PATH, {"taskId": task_id})
        return self.structure(data, WebhookDetail, WEBHOOK_DETAIL_PATH)

    async def retry_webhook(self, webhook_id: str, webhook_url: str | None) -> None:
        """``retryWebhook``: send the event again (not retried: a lost answer may have sent it)."""
        body = {"webhookId": webhook_id}
        if webhook_url is not None:
            body["webhookUrl"] = webhook_url
        await self.legacy(WEBHOOK_RETRY_PATH, body, retry=False)

    async def api_keys(self) -> tuple[ApiKeyInfo, ...]:
        """``/openapi/v2/api-key/list``."""
        data = await self.envelope("GET", API_KEYS_PATH)
        if not isinstance(data, list):
            raise ProtocolError(f"{API_KEYS_PATH} answered with an unexpected shape")
        return tuple(self.structure(item, ApiKeyInfo, API_KEYS_PATH) for item in data)

    async def resources(self, body: dict[str, Any]) -> ResourcePage:
        """``/openapi/v2/resource/list`` (read-only: retried)."""
        data = await self.envelope("POST", RESOURCES_PATH, json_body=body)
        return self.structure(data, ResourcePage, RESOURCES_PATH)

    async def lora_upload_url(self, name: str, md5_hex: str) -> LoraGrant:
        """``getLoraUploadUrl``: a pre-signed URL to PUT a LoRA file to."""
        data = await self.legacy(LORA_URL_PATH, {"loraName": name, "md5Hex": md5_hex})
        return self.structure(data, LoraGrant, LORA_URL_PATH)
