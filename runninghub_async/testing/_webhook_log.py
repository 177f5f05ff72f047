"""Every ``TASK_END`` webhook the fake sent, and the legacy routes that inspect and resend them.

* ``POST /task/openapi/getWebhookDetail`` ``{apiKey, taskId}`` -> ``data {id,
  userApiKey (masked), taskId, webhookUrl, eventData, callbackStatus,
  callbackResponse, retryCount, createTime, updateTime}``.
* ``POST /task/openapi/retryWebhook`` ``{apiKey, webhookId, webhookUrl?}`` ->
  ``{"code": 0, "msg": "success", "data": null}``, then the same payload is
  POSTed again (to the new URL if one is given), with the usual retries.

``callbackStatus`` is ``PENDING`` while a delivery is under way, then
``SUCCESS`` or ``FAILED``; ``callbackResponse`` is the receiver's last answer
(or the connection error); ``retryCount`` counts POSTs after the first one.
No event for the task (or another key's task), or an unknown ``webhookId``:
code 1, "webhook event does not exist".
"""

from __future__ import annotations

import time
from typing import Any

import attrs
from aiohttp import web

from ._bodies import envelope, event_data
from ._context import RouteContext, json_response, mask_key, task_id_of
from ._state import TaskRecord
from ._webhooks import WebhookSender

__all__ = ["WebhookEvent", "WebhookLog"]

_WEBHOOK_ID_BASE = 1_900_000_000_000_000_000
_NO_EVENT = "webhook event does not exist"


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))


@attrs.define(eq=False)
class WebhookEvent:
    """One task's webhook: what was sent where, and how the last delivery went."""

    webhook_id: str
    task_id: str
    api_key: str = attrs.field(repr=False)
    url: str
    payload: dict[str, object]
    created_at: float
    updated_at: float
    status: str = "PENDING"
    response: str = ""
    retry_count: int = 0

    def as_json(self) -> dict[str, Any]:
        """The ``data`` of getWebhookDetail."""
        return {
            "id": self.webhook_id,
            "userApiKey": mask_key(self.api_key),
            "taskId": self.task_id,
            "webhookUrl": self.url,
            "eventData": self.payload["eventData"],
            "callbackStatus": self.status,
            "callbackResponse": self.response,
            "retryCount": self.retry_count,
            "createTime": _stamp(self.created_at),
            "updateTime": _stamp(self.updated_at),
        }


class WebhookLog:
    """Records each task's webhook and resends it on request.

    *sender* is set by the server while it runs; without one nothing is sent.
    """

    def __init__(self, ctx: RouteContext) -> None:
        self._ctx = ctx
        self._by_task: dict[str, WebhookEvent] = {}
        self._by_id: dict[str, WebhookEvent] = {}
        self.sender: WebhookSender | None = None

    def task_ended(self, record: TaskRecord) -> None:
        """Send the ``TASK_END`` webhook of *record*, if it asked for one, and log it."""
        if record.webhook_url is None or self.sender is None:
            return
        now = time.time()
        event = WebhookEvent(
            webhook_id=str(_WEBHOOK_ID_BASE + len(self._by_id) + 1),
            task_id=record.task_id,
            api_key=record.api_key,
            url=record.webhook_url,
            payload={
                "event": "TASK_END",
                "taskId": record.task_id,
                "eventData": event_data(record.snapshot()),
            },
            created_at=now,
            updated_at=now,
        )
        self._by_task[record.task_id] = event
        self._by_id[event.webhook_id] = event
        self._deliver(event, first=True)

    def _deliver(self, event: WebhookEvent, *, first: bool) -> None:
        assert self.sender is not None
        event.status = "PENDING"

        def done(delivered: bool, attempts: int, answer: str) -> None:
            event.status = "SUCCESS" if delivered else "FAILED"
            event.response = answer
            event.retry_count += attempts - 1 if first else attempts
            event.updated_at = time.time()
            self._ctx.book.notify()

        self.sender.send(event.url, event.payload, done)

    async def detail(self, request: web.Request) -> web.Response:
        """``POST /task/openapi/getWebhookDetail``."""
        ctx = self._ctx
        asked = await ctx.legacy_task(request)
        if isinstance(asked, web.Response):
            return asked
        key, task_id = asked
        event = self._by_task.get(task_id)
        if event is None or event.api_key != key:
            return ctx.legacy_error(1, _NO_EVENT)
        return json_response(envelope(0, "success", event.as_json()))

    async def retry(self, request: web.Request) -> web.Response:
        """``POST /task/openapi/retryWebhook``."""
        ctx = self._ctx
        body = await ctx.json_body(request)
        key = ctx.body_key(body)
        if key is None:
            return ctx.bad_legacy_key()
        webhook_id = task_id_of(body, "webhookId")
        if webhook_id is None:
            return ctx.legacy_error(301, "PARAMS_INVALID: webhookId is required")
        url = body.get("webhookUrl") if isinstance(body, dict) else None
        if url not in (None, "") and not (
            isinstance(url, str) and url.startswith(("http://", "https://"))
        ):
            return ctx.legacy_error(301, "PARAMS_INVALID: webhookUrl must be an http(s) URL")
        event = self._by_id.get(webhook_id)
        if event is None or event.api_key != key or self.sender is None:
            return ctx.legacy_error(1, _NO_EVENT)
        if isinstance(url, str) and url:
            event.url = url
        event.updated_at = time.time()
        self._deliver(event, first=False)
        return json_response(envelope(0, "success"))
