"""The usual task answers read without the converter: every check's answer comes here.

`fast_snapshot` gives exactly the `TaskSnapshot` the converter of ``_wire`` would
(its rules are that module's docstring) for answers made of strings, nulls and the
documented nesting, and None for anything else, which the converter then reads
(or refuses).  ``tests/test_wire.py`` checks the two agree on generated answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ._models import Output, TaskSnapshot, TaskStatus, Usage

__all__ = ["fast_snapshot", "usage_amount", "usage_seconds"]

# Amounts at or past this are not a task's cost: a lying or broken answer.
_ABSURD = Decimal("1e15")

_STATUSES: dict[str, TaskStatus] = {status.value: status for status in TaskStatus}


def fast_snapshot(data: Mapping[str, Any]) -> TaskSnapshot | None:
    """The converter's `TaskSnapshot` for the shapes answers nearly always have, faster.

    Every status answer passes through here: the generated structuring code costs
    several times the JSON parse.  Only strings, nulls and the documented nesting
    are read; anything else returns None and the converter decides (same result
    or the same error, which ``tests/test_wire.py`` checks against the converter).
    """
    get = data.get
    task_id, status, code = get("taskId"), get("status"), get("errorCode", "")
    message, client_id, tips = get("errorMessage", ""), get("clientId", ""), get("promptTips", "")
    if type(task_id) is not str or type(status) is not str or type(code) is not str:
        return None
    status = _STATUSES.get(status)
    if status is None or get("failedReason"):
        return None
    for text in (message, client_id, tips):
        if text is not None and type(text) is not str:
            return None
    usage = None
    raw_usage = get("usage")
    if raw_usage is not None:
        usage = _fast_usage(raw_usage)
        if usage is None:
            return None
    outputs: tuple[Output, ...] = ()
    results = get("results")
    if results is not None:
        if type(results) is not list:
            return None
        items = []
        for item in results:
            output = _fast_output(item)
            if output is None:
                return None
            items.append(output)
        outputs = tuple(items)
    code = code.strip()
    return TaskSnapshot(
        task_id,
        status,
        "" if code in ("", "0") else code,
        message or "",
        None,
        usage,
        outputs,
        client_id or "",
        tips or "",
    )


def _fast_usage(raw: Any) -> Usage | None:
    if type(raw) is not dict:
        return None
    get = raw.get
    money, coins = get("consumeMoney"), get("consumeCoins")
    third, seconds = get("thirdPartyConsumeMoney"), get("taskCostTime")
    for value in (money, coins, third, seconds):
        if value is not None and type(value) is not str:
            return None
    return Usage(
        usage_amount(money), usage_amount(coins), usage_seconds(seconds), usage_amount(third)
    )


def usage_amount(value: Any) -> Decimal | None:
    """A cost field of ``usage`` as a Decimal, or None when it is not a plausible amount.

    The cost only informs (``JobResult.usage``, ``statistics().cost``): a field that
    is not a finite, non-negative, plausible amount is dropped rather than failing
    the result it came with (or, as ``sNaN``, the running total it is added to).
    """
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and 0 <= amount < _ABSURD else None


def usage_seconds(value: Any) -> float | None:
    """``usage.taskCostTime`` as seconds, or None when it is not a finite, non-negative time."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _fast_output(raw: Any) -> Output | None:
    if type(raw) is not dict:
        return None
    get = raw.get
    url, kind, node, text = get("url"), get("outputType"), get("nodeId"), get("text")
    if url is None:
        url = get("outputUrl")
    if text is None:
        text = get("content", get("output"))
    for value in (url, kind, node, text):
        if value is not None and type(value) is not str:
            return None
    return Output(url, kind, node, text)
