"""The JSON bodies the fake answers with, field for field as runninghub-api.md shows them.

Task endpoints (submit, query) answer a bare object with ``errorCode`` and
``errorMessage``; management endpoints (upload, queue/status) and the legacy ones
wrap ``data`` in a ``code`` envelope (upload says ``message``, the others ``msg``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._models import FakeTask
from ._outputs import render_text

__all__ = [
    "MESSAGES",
    "OUTPUT_NODE_ID",
    "PROMPT_TIPS",
    "envelope",
    "event_data",
    "failed_reason",
    "join_problems",
    "message_for",
    "output_item",
    "output_key",
    "query_body",
    "query_error",
    "submit_body",
    "task_error",
    "upload_envelope",
]

Json = dict[str, Any]

# errorCode -> errorMessage.  1004, 421, 1014 and 1000 are observed texts; the rest
# follow the "English | 中文" pattern with wording of our own (the real text is unknown).
MESSAGES: Mapping[str, str] = {
    "421": "api queue limit reached, please retry later | API 并发数已达上线，请降低并发或稍后重试",
    "1000": "unknown error",
    "1002": "invalid api key | API Key无效",
    "1003": "rate limit exceeded",
    "1004": "Task not found, please check the task ID | 任务不存在或已过期，请检查任务ID",
    "1007": "invalid parameters | 参数无效",
    "1014": (
        "Access Denied: Standard Model API is restricted to Enterprise-Shared API Keys only."
        "|访问被拒绝：标准模型API仅限企业级-共享API Key调用。"
    ),
    "1015": "generation failed | 生成失败",
    "1501": "content moderation failed | 内容审核未通过",
    "1505": "photorealistic real-person images are prohibited | 禁止生成写实真人图片",
}

_EXCEPTION_TYPES: Mapping[str, str] = {
    "1015": "RuntimeError",
    "1501": "ContentModerationError",
    "1505": "ContentModerationError",
}

PROMPT_TIPS = json.dumps(
    {"result": True, "error": None, "outputs_to_execute": ["2"], "node_errors": {}}
)
"""The ComfyUI validation output a submit carries in ``promptTips`` (a JSON string)."""

OUTPUT_NODE_ID = "2"


def message_for(code: str) -> str:
    """The errorMessage the fake uses for *code*."""
    return MESSAGES.get(code, "task failed | 任务失败")


def task_error(code: str, message: str | None = None) -> Json:
    """A rejected submit (or any task-endpoint error): empty taskId and status."""
    return {
        "taskId": "",
        "status": "",
        "errorCode": code,
        "errorMessage": message if message is not None else message_for(code),
        "results": None,
        "clientId": "",
        "promptTips": "",
    }


def submit_body(task: FakeTask, client_id: str) -> Json:
    """The answer to an accepted submit."""
    return {
        "taskId": task.task_id,
        "status": task.status,
        "errorCode": "",
        "errorMessage": "",
        "results": None,
        "clientId": client_id,
        "promptTips": PROMPT_TIPS,
    }


def query_error(task_id: str, code: str, message: str | None = None) -> Json:
    """A /query error such as 1004 (not found): status ``""`` and ``usage`` null."""
    return {
        "taskId": task_id,
        "status": "",
        "errorCode": code,
        "errorMessage": message if message is not None else message_for(code),
        "failedReason": {},
        "usage": None,
        "results": None,
        "clientId": "",
        "promptTips": "",
    }


def _cost_time(task: FakeTask) -> str:
    if task.finished_at is None or task.started_at is None:
        return "0"
    return str(round(max(task.finished_at - task.started_at, 0.0)))


def _usage(task: FakeTask, price: str) -> Json | None:
    if task.finished_at is None:
        return None
    money = price if task.status == "SUCCESS" else "0.00"
    return {
        "consumeMoney": money,
        "consumeCoins": str(round(float(money) * 100)),
        "taskCostTime": _cost_time(task),
        "thirdPartyConsumeMoney": None,
    }


def output_key(task: FakeTask, url: str) -> str:
    """What an output file's content derives from: task id, index and prompt."""
    index = url.rpartition("/")[2].partition(".")[0]
    prompt = task.params.get("prompt")
    return f"{task.task_id}/{index}/{prompt if isinstance(prompt, str) else ''}"


def output_item(task: FakeTask, url: str) -> Json:
    """One ``results[]`` item: ``outputType`` is the extension; text outputs carry ``text``."""
    ext = url.rpartition(".")[2]
    text = render_text(output_key(task, url)) if ext == "txt" else None
    return {"url": url, "nodeId": OUTPUT_NODE_ID, "outputType": ext, "text": text}


def query_body(task: FakeTask, price: str) -> Json:
    """The /query answer for a known task, in the documented field order."""
    results = None
    if task.status == "SUCCESS":
        results = [output_item(task, url) for url in task.outputs]
    return {
        "taskId": task.task_id,
        "status": task.status,
        "errorCode": task.error_code,
        "errorMessage": task.error_message,
        "failedReason": dict(task.failed_reason),
        "usage": _usage(task, price),
        "results": results,
        "clientId": "",
        "promptTips": "",
    }


def failed_reason(code: str, message: str, endpoint: str, params: Mapping[str, object]) -> Json:
    """A ComfyUI-style ``failedReason`` for a task failing with *code*."""
    exception_type = _EXCEPTION_TYPES.get(code, "RuntimeError")
    inputs = {k: [v] for k, v in params.items() if isinstance(v, str | int | float | bool)}
    return {
        "node_id": OUTPUT_NODE_ID,
        "node_name": endpoint.partition("/")[0] or "RunningHubNode",
        "exception_type": exception_type,
        "exception_message": message,
        "traceback": [
            "Traceback (most recent call last):\n",
            '  File "/app/execution.py", line 327, in execute\n',
            f"{exception_type}: {message}\n",
        ],
        "current_inputs": inputs,
        "current_outputs": {},
    }


def event_data(task: FakeTask) -> str:
    """The webhook ``eventData`` string: the legacy /task/openapi/outputs answer."""
    if task.status == "SUCCESS":
        body: Json = {
            "code": 0,
            "msg": "success",
            "data": [
                {
                    "fileUrl": url,
                    "fileType": url.rpartition(".")[2],
                    "taskCostTime": _cost_time(task),
                    "nodeId": OUTPUT_NODE_ID,
                }
                for url in task.outputs
            ],
        }
    else:
        body = {
            "code": 805,
            "msg": "APIKEY_TASK_STATUS_ERROR",
            "data": {"failedReason": dict(task.failed_reason)},
        }
    return json.dumps(body, ensure_ascii=False)


def envelope(code: int, msg: str, data: object = None) -> Json:
    """The legacy / queue-status envelope ``{"code", "msg", "data"}``."""
    return {"code": code, "msg": msg, "data": data}


def upload_envelope(code: int, message: str, data: object = None) -> Json:
    """The v2 upload envelope, which says ``message`` where others say ``msg``."""
    if code == 0:
        return {"code": code, "message": message, "data": data}
    return {"code": code, "message": message}


def join_problems(problems: Sequence[object]) -> str:
    """A 1007 errorMessage naming every violated field."""
    return "invalid parameters: " + "; ".join(str(p) for p in problems) + " | 参数无效"
