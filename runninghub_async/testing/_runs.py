"""AI-app and ComfyUI-workflow runs, v2 and legacy: each accepted run is a real task.

* ``POST /openapi/v2/run/ai-app/<webappId>`` and ``/openapi/v2/run/workflow/<workflowId>``:
  Bearer auth, rate limited, answer the bare v2 submit object.
* ``POST /task/openapi/ai-app/run`` (and ``quick-ai-app/run``) with ``webappId``,
  ``POST /task/openapi/create`` with ``workflowId``: ``apiKey`` in the body,
  answer ``{"code": 0, "msg": "success", "data": {"netWssUrl", "taskId",
  "clientId", "taskStatus", "promptTips"}}``.

The tasks land in the same `TaskBook` as standard-model submits, so
``/openapi/v2/query``, legacy status/outputs, cancel, the concurrency limit and
``TASK_END`` webhooks treat them all alike.  Their endpoint is
``run/ai-app/<id>`` or ``run/workflow/<id>`` whichever API created them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
from aiohttp import web

from ._bodies import PROMPT_TIPS, envelope, join_problems, submit_body, task_error
from ._context import RouteContext, json_response
from ._registry import Registry, app_mismatches, parse_node_info_list, workflow_mismatches
from ._state import TaskRecord

__all__ = ["Runs"]

# Why a run was refused -> (v2 errorCode, v2 message, legacy code, legacy msg).
_CODES: Mapping[str, tuple[str, str, int, str]] = {
    "params": ("1007", "invalid parameters | 参数无效", 301, "PARAMS_INVALID"),
    "app": ("901", "webapp does not exist | 应用不存在", 901, "WEBAPP_NOT_EXISTS"),
    "workflow": ("380", "workflow does not exist | 工作流不存在", 380, "WORKFLOW_NOT_EXISTS"),
    "nodes": (
        "1101",
        "nodeInfoList does not match | 节点信息与工作流不匹配",
        803,
        "APIKEY_INVALID_NODE_INFO",
    ),
    "queue": (
        "421",
        "api queue limit reached, please retry later | API 并发数已达上线，请降低并发或稍后重试",
        421,
        "TASK_QUEUE_MAXED",
    ),
}

# Fields that steer the run rather than feed it: not kept in the task's params.
_CONTROL_FIELDS = ("apiKey", "webhookUrl")


@attrs.frozen
class _Refusal:
    reason: str
    problems: tuple[str, ...] = ()


@attrs.frozen
class _Accepted:
    endpoint: str
    params: Mapping[str, object]
    webhook_url: str | None


def _id_of(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def _inline_prompt(body: Mapping[str, object]) -> tuple[dict[str, Any] | None, str | None]:
    """The ``workflow`` field of a legacy create (an API-format prompt as a JSON string)."""
    raw = body.get("workflow")
    if raw is None or raw == "":
        return None, None
    try:
        prompt = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        prompt = None
    valid = isinstance(prompt, dict) and all(
        isinstance(node, dict) and isinstance(node.get("inputs"), dict) for node in prompt.values()
    )
    if not valid:
        return None, "workflow must be an API-format workflow as a JSON string"
    return prompt, None


class Runs:
    """The handlers of every route that starts an app or workflow task."""

    def __init__(self, ctx: RouteContext, registry: Registry) -> None:
        self._ctx = ctx
        self._registry = registry

    # -- the checks both API generations share ---------------------------------

    def _check(
        self, kind: str, target: str | None, body: Mapping[str, object]
    ) -> _Accepted | _Refusal:
        if target is None:
            field = "webappId" if kind == "app" else "workflowId"
            return _Refusal("params", (f"{field} is required",))
        entries, problems = parse_node_info_list(body.get("nodeInfoList"))
        webhook_url = body.get("webhookUrl") or None
        if webhook_url is not None and not (
            isinstance(webhook_url, str) and webhook_url.startswith(("http://", "https://"))
        ):
            problems.append(f"webhookUrl={webhook_url!r} must be an http(s) URL")
        prompt, prompt_problem = _inline_prompt(body) if kind == "workflow" else (None, None)
        if prompt_problem is not None:
            problems.append(prompt_problem)
        if problems:
            return _Refusal("params", tuple(problems))
        if kind == "app":
            app = self._registry.apps.get(target)
            if app is None:
                return _Refusal("app", (f"webappId {target}",))
            mismatches = app_mismatches(app, entries)
        else:
            known = self._registry.workflows.get(target)
            if known is None:
                return _Refusal("workflow", (f"workflowId {target}",))
            mismatches = workflow_mismatches(prompt or known, entries)
        if mismatches:
            return _Refusal("nodes", tuple(mismatches))
        params = {k: v for k, v in body.items() if k not in _CONTROL_FIELDS}
        endpoint = f"run/{'ai-app' if kind == 'app' else 'workflow'}/{target}"
        return _Accepted(endpoint, params, webhook_url if isinstance(webhook_url, str) else None)

    def _admit(self, key: str, verdict: _Accepted | _Refusal) -> TaskRecord | _Refusal:
        if isinstance(verdict, _Refusal):
            return verdict
        limit = self._ctx.config.concurrency_limit
        if limit is not None and self._ctx.book.live_count(key) >= limit:
            return _Refusal("queue")
        return self._ctx.book.create(key, verdict.endpoint, verdict.params, verdict.webhook_url)

    # -- v2 ----------------------------------------------------------------------

    async def v2_app(self, request: web.Request) -> web.Response:
        """``POST /openapi/v2/run/ai-app/{webapp_id}``."""
        return await self._v2(request, "app", request.match_info["webapp_id"])

    async def v2_workflow(self, request: web.Request) -> web.Response:
        """``POST /openapi/v2/run/workflow/{workflow_id}``."""
        return await self._v2(request, "workflow", request.match_info["workflow_id"])

    async def _v2(self, request: web.Request, kind: str, target: str) -> web.Response:
        ctx = self._ctx
        ctx.book.counters.submit_requests += 1
        key = ctx.bearer(request)
        if key is None:
            return ctx.reject("1002", task_error("1002"))
        if not ctx.limiter.allow(key):
            return ctx.reject("1003", task_error("1003"))
        body = await ctx.json_body(request)
        if not isinstance(body, dict):
            problem = join_problems(["the body must be a JSON object"])
            return ctx.reject("1007", task_error("1007", problem))
        outcome = self._admit(key, self._check(kind, target, body))
        if isinstance(outcome, _Refusal):
            code, message, _, _ = _CODES[outcome.reason]
            if outcome.reason == "params":
                message = join_problems(outcome.problems)
            elif outcome.problems:
                english, _, chinese = message.partition(" | ")
                message = f"{english}: {'; '.join(outcome.problems)} | {chinese}"
            return ctx.reject(code, task_error(code, message))
        return json_response(submit_body(outcome.snapshot(), ctx.book.client_id()))

    # -- legacy ------------------------------------------------------------------

    async def legacy_app(self, request: web.Request) -> web.Response:
        """``POST /task/openapi/ai-app/run`` and ``/task/openapi/quick-ai-app/run``."""
        return await self._legacy(request, "app", "webappId")

    async def legacy_create(self, request: web.Request) -> web.Response:
        """``POST /task/openapi/create``."""
        return await self._legacy(request, "workflow", "workflowId")

    async def _legacy(self, request: web.Request, kind: str, id_field: str) -> web.Response:
        ctx = self._ctx
        ctx.book.counters.submit_requests += 1
        body = await ctx.json_body(request)
        key = ctx.body_key(body)
        if key is None:
            return ctx.bad_legacy_key()
        assert isinstance(body, dict)  # body_key found a key in it
        outcome = self._admit(key, self._check(kind, _id_of(body.get(id_field)), body))
        if isinstance(outcome, _Refusal):
            _, _, code, msg = _CODES[outcome.reason]
            if outcome.problems:
                msg = f"{msg}: {'; '.join(outcome.problems)}"
            return ctx.legacy_error(code, msg)
        task = outcome.snapshot()
        base = ctx.book.base_url
        data = {
            # Not served: a client that opens it learns nothing, as with a stale real one.
            "netWssUrl": None if task.status == "QUEUED" else f"ws{base[4:]}/ws/{task.task_id}",
            "taskId": task.task_id,
            "clientId": ctx.book.client_id(),
            "taskStatus": task.status,
            "promptTips": PROMPT_TIPS,
        }
        return json_response(envelope(0, "success", data))
