"""The wire format: one cattrs converter per client, owning every rule about RunningHub JSON.

Rules:

- Names are camelCase on the wire (``taskId``), snake_case in Python; a task's
  ``results`` are ``outputs``.
- Numbers arrive as strings (``"0.40"``, ``"99999"``); money and coins become
  ``Decimal``, counts ``int``, seconds ``float``.  Unstructuring writes strings back.
- ``taskId`` may be a string or a number; it is always kept as a string.
- ``errorCode`` may be ``""``, ``0`` or a code; no error is ``""``.
- An unknown ``status`` (or the empty status of a not-found task) becomes
  ``TaskStatus.UNKNOWN`` instead of failing.
- ``results: null`` is no outputs; ``failedReason: {}`` is None; ``usage: null`` is None.
- An output's URL may come as ``url`` or ``outputUrl``, its text as ``text``,
  ``content`` or ``output``.
- Extra keys are ignored everywhere, so new fields never break old clients.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from ._extras_models import (
    ApiKeyInfo,
    LoraGrant,
    Price,
    Resource,
    ResourcePage,
    WebhookDetail,
)
from ._fast_wire import usage_amount, usage_seconds
from ._models import (
    AccountStatus,
    FailedReason,
    Output,
    QueueStatus,
    TaskSnapshot,
    TaskStatus,
    UploadedFile,
    Usage,
)

__all__ = ["converter", "make_converter"]

T = TypeVar("T")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _text(value: Any, _: object = None) -> str:
    return "" if value is None else str(value)


def _optional_text(value: Any, _: object = None) -> str | None:
    return None if value is None else str(value)


def _error_code(value: Any, _: object = None) -> str:
    text = _text(value).strip()
    return "" if text in ("", "0") else text


def _status(value: Any, _: object = None) -> TaskStatus:
    try:
        return TaskStatus(str(value).upper())
    except ValueError:
        return TaskStatus.UNKNOWN


def _decimal(value: Any, _: object = None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def _int(value: Any, _: object = None) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not a count: {value!r}")
    number = Decimal(str(value).strip())
    if number != number.to_integral_value():
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def _optional_int(value: Any, _: object = None) -> int | None:
    return None if value is None or value == "" else _int(value)


def _optional_float(value: Any, _: object = None) -> float | None:
    return None if value is None or value == "" else float(value)


def _usage_amount(value: Any, _: object = None) -> Decimal | None:
    return usage_amount(value)


def _usage_seconds(value: Any, _: object = None) -> float | None:
    return usage_seconds(value)


def _number_text(value: Decimal | float | int | None) -> str | None:
    return None if value is None else str(value)


def _register(
    conv: cattrs.Converter,
    cls: type[Any],
    special: Mapping[str, Any],
    prepare: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> None:
    """camelCase renames for every field of *cls*, plus *special* overrides by field name."""
    overrides: dict[str, Any] = {
        field.name: override(rename=_camel(field.name)) for field in attrs.fields(cls)
    }
    overrides.update(special)
    structure = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=False, **overrides)
    unstructure = make_dict_unstructure_fn(cls, conv, **overrides)

    def structure_hook(value: Any, type_: Any) -> Any:
        if not isinstance(value, Mapping):
            raise TypeError(
                f"expected a JSON object for {cls.__name__}, got {type(value).__name__}"
            )
        return structure(prepare(value) if prepare else value, type_)

    conv.register_structure_hook(cls, structure_hook)
    conv.register_unstructure_hook(cls, unstructure)


def _prepare_output(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    data = dict(raw)
    if data.get("url") is None and data.get("outputUrl") is not None:
        data["url"] = data["outputUrl"]
    if data.get("text") is None:
        data["text"] = data.get("content", data.get("output"))
    return data


def _prepare_failed_reason(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    data = dict(raw)
    trace = data.get("traceback")
    if isinstance(trace, str):
        data["traceback"] = [trace]
    elif trace is None:
        data.pop("traceback", None)
    return data


def make_converter() -> cattrs.Converter:
    """A new converter with every rule in this module's docstring."""
    conv = cattrs.Converter()
    conv.register_structure_hook(TaskStatus, _status)
    conv.register_unstructure_hook(TaskStatus, lambda status: status.value)
    conv.register_structure_hook(Decimal, lambda value, _: _decimal(value))
    conv.register_unstructure_hook(Decimal, str)

    def failed_reason(value: Any, _: object) -> FailedReason | None:
        if not value:
            return None
        structured: FailedReason = conv.structure(value, FailedReason)
        return structured

    def outputs(value: Any, _: object) -> tuple[Output, ...]:
        if value is None:
            return ()
        return tuple(conv.structure(item, Output) for item in value)

    def nullable_outputs(value: tuple[Output, ...]) -> list[Any] | None:
        return [conv.unstructure(o) for o in value] if value else None

    def nullable_reason(value: FailedReason | None) -> Any:
        return {} if value is None else conv.unstructure(value)

    _register(
        conv,
        Output,
        {"node_id": override(rename="nodeId", struct_hook=_optional_text)},
        _prepare_output,
    )
    _register(
        conv,
        Usage,
        # Unusable cost fields are dropped, never fail the result (`usage_amount`).
        {
            "consume_money": override(
                rename="consumeMoney", struct_hook=_usage_amount, unstruct_hook=_number_text
            ),
            "consume_coins": override(
                rename="consumeCoins", struct_hook=_usage_amount, unstruct_hook=_number_text
            ),
            "task_cost_time": override(
                rename="taskCostTime", struct_hook=_usage_seconds, unstruct_hook=_number_text
            ),
            "third_party_consume_money": override(
                rename="thirdPartyConsumeMoney",
                struct_hook=_usage_amount,
                unstruct_hook=_number_text,
            ),
        },
    )
    # failedReason is the one snake_case object on the wire.
    snake = {field.name: override(rename=field.name) for field in attrs.fields(FailedReason)}
    snake["node_id"] = override(rename="node_id", struct_hook=_optional_text)
    _register(conv, FailedReason, snake, _prepare_failed_reason)
    _register(
        conv,
        TaskSnapshot,
        {
            "task_id": override(rename="taskId", struct_hook=_text),
            "error_code": override(rename="errorCode", struct_hook=_error_code),
            "error_message": override(rename="errorMessage", struct_hook=_text),
            "failed_reason": override(
                rename="failedReason", struct_hook=failed_reason, unstruct_hook=nullable_reason
            ),
            "outputs": override(
                rename="results", struct_hook=outputs, unstruct_hook=nullable_outputs
            ),
            "client_id": override(rename="clientId", struct_hook=_text),
            "prompt_tips": override(rename="promptTips", struct_hook=_text),
        },
    )
    _register(
        conv,
        UploadedFile,
        {
            "download_url": override(rename="download_url", struct_hook=_text),
            "file_name": override(rename="fileName", struct_hook=_text),
            "size": override(struct_hook=_int, unstruct_hook=str),
            "type": override(struct_hook=_text),
        },
        lambda raw: {**raw, "fileName": raw.get("fileName", raw.get("filename"))},
    )
    _register(
        conv,
        AccountStatus,
        {
            "remain_coins": override(
                rename="remainCoins", struct_hook=_optional_int, unstruct_hook=_number_text
            ),
            "current_task_counts": override(
                rename="currentTaskCounts", struct_hook=_int, unstruct_hook=str
            ),
            "remain_money": override(rename="remainMoney", unstruct_hook=_number_text),
            "currency": override(struct_hook=_optional_text),
            "api_type": override(rename="apiType", struct_hook=_text),
        },
    )
    counts: dict[str, Any] = {
        name: override(rename=_camel(name), struct_hook=_int, unstruct_hook=str)
        for name in ("concurrent_limit", "running_count", "queued_count", "total_current_tasks")
    }
    counts["api_key_type"] = override(rename="apiKeyType", struct_hook=_text)
    _register(conv, QueueStatus, counts)
    _register_extras(conv)
    return conv


def _optional_bool(value: Any, _: object = None) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _bool(value: Any, _: object = None) -> bool:
    return bool(_optional_bool(value))


def _prepare_resource(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    data = dict(raw)
    versions = data.get("versions")
    versions = versions if isinstance(versions, list) else []
    data["baseModels"] = [
        v["baseModel"] for v in versions if isinstance(v, Mapping) and v.get("baseModel")
    ]
    tags = data.get("tags")
    tags = tags if isinstance(tags, list) else []
    data["tags"] = [
        str(t.get("name")) if isinstance(t, Mapping) else str(t)
        for t in tags
        if not isinstance(t, Mapping) or t.get("name")
    ]
    data["description"] = data.get("desc") or data.get("description") or ""
    return data


def _register_extras(conv: cattrs.Converter) -> None:
    """The routes beyond submit and query (``_extras_models``): prices, webhooks, keys..."""
    _register(
        conv,
        Price,
        {
            "amount": override(rename="estimatedPrice"),
            "currency": override(struct_hook=_text),
            "text": override(rename="priceText", struct_hook=_optional_text),
            "source": override(omit=True),
            "endpoint": override(omit=True),
            "text_en": override(rename="priceTextEn", struct_hook=_optional_text),
            "free": override(rename="isFreeThisCall", struct_hook=_bool),
            "free_calls_left": override(
                rename="remainingFreeLimitCount", struct_hook=_optional_int
            ),
        },
    )
    _register(
        conv,
        WebhookDetail,
        {
            "id": override(struct_hook=_text),
            "task_id": override(rename="taskId", struct_hook=_text),
            "webhook_url": override(rename="webhookUrl", struct_hook=_text),
            "event_data": override(rename="eventData", struct_hook=_text),
            "callback_status": override(rename="callbackStatus", struct_hook=_text),
            "callback_response": override(rename="callbackResponse", struct_hook=_optional_text),
            "retry_count": override(rename="retryCount", struct_hook=_int, unstruct_hook=str),
            "create_time": override(rename="createTime", struct_hook=_optional_text),
            "update_time": override(rename="updateTime", struct_hook=_optional_text),
        },
    )
    _register(
        conv,
        ApiKeyInfo,
        {
            "key": override(struct_hook=_text),
            "name": override(rename="apiKeyName", struct_hook=_text),
            "status": override(struct_hook=_optional_int),
            "visible": override(struct_hook=_optional_bool),
            "expire_at": override(rename="expireAt", struct_hook=_optional_text),
            "expire_in_minute": override(rename="expireInMinute", struct_hook=_optional_int),
            "created_at": override(rename="createdAt", struct_hook=_optional_text),
        },
    )
    _register(
        conv,
        Resource,
        {
            "id": override(struct_hook=_text),
            "name": override(rename="resourceName", struct_hook=_text),
            "type": override(rename="resourceType", struct_hook=_text),
            "create_time": override(rename="createTime", struct_hook=_optional_text),
            "description": override(struct_hook=_text),
            "node_model_name": override(rename="nodeModelName", struct_hook=_text),
        },
        _prepare_resource,
    )

    def records(value: Any, _: object) -> tuple[Resource, ...]:
        if value is None:
            return ()
        return tuple(conv.structure(item, Resource) for item in value)

    _register(
        conv,
        ResourcePage,
        {
            "records": override(struct_hook=records),
            "page": override(rename="current", struct_hook=_int),
            "page_size": override(rename="size", struct_hook=_int),
            "total": override(struct_hook=_int),
            "pages": override(struct_hook=_int),
            "has_next": override(rename="hasNext", struct_hook=_bool),
        },
    )
    _register(
        conv,
        LoraGrant,
        {"url": override(struct_hook=_text), "file_name": override(rename="fileName")},
    )


@functools.cache
def converter() -> cattrs.Converter:
    """The one converter every client shares, built on first use.

    It holds no per-client state; building one per client would compile its
    structuring code again each time (and keep it: cattrs registers the generated
    source with ``linecache``).
    """
    return make_converter()
