"""The usual task answers read without the converter: every check's answer comes here.

`fast_snapshot` gives exactly the `TaskSnapshot` the converter of ``_wire`` would
(its rules are that module's docstring) for answers made of strings, nulls and the
documented nesting, and None for anything else, which the converter then reads
(or refuses).  ``tests/test_wire.py`` checks the two agree on generated answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ._models import Output, TaskSnapshot, TaskStatus, Usage

__all__ = ["fast_snapshot"]

_STATUSES: dict[str, TaskStatus] = {status.value: status for status in TaskStatus}


def fast_snapshot(data: Mapping[str, Any]) -> TaskSnapshot | None:
    """The converter's `TaskSnapshot` for the shapes answers nearly always have, faster.

    Every status answer passes through here: the generated structuring code costs
    several times the JSON parse.  Only strings, nulls and the documented nesting
    are read; anything else returns None and the converter decides (same result
    or the same error, which ``tests/test_wire.py`` checks against the converter).
    """
    # Written out flat (no loops over small tuples): this runs for every answer.
    get = data.get
    task_id, status, code = get("taskId"), get("status"), get("errorCode", "")
    if type(task_id) is not str or type(status) is not str or type(code) is not str:
        return None
    status = _STATUSES.get(status)
    if status is None or get("failedReason"):
        return None
    message, client_id, tips = get("errorMessage", ""), get("clientId", ""), get("promptTips", "")
    if (
        (message is not None and type(message) is not str)
        or (client_id is not None and type(client_id) is not str)
        or (tips is not None and type(tips) is not str)
    ):
        return None
    usage = get("usage")
    if usage is not None:
        usage = _fast_usage(usage)
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
    if code:
        code = code.strip()
        if code == "0":
            code = ""
    return TaskSnapshot(
        task_id, status, code, message or "", None, usage, outputs, client_id or "", tips or ""
    )


def _fast_usage(raw: Any) -> Usage | None:
    if type(raw) is not dict:
        return None
    get = raw.get
    money, coins = get("consumeMoney"), get("consumeCoins")
    third, seconds = get("thirdPartyConsumeMoney"), get("taskCostTime")
    if (
        (money is not None and type(money) is not str)
        or (coins is not None and type(coins) is not str)
        or (third is not None and type(third) is not str)
        or (seconds is not None and type(seconds) is not str)
    ):
        return None
    try:
        return Usage(
            Decimal(money) if money else None,
            Decimal(coins) if coins else None,
            float(seconds) if seconds else None,
            Decimal(third) if third else None,
        )
    except (InvalidOperation, ValueError):
        return None  # the converter raises its own error for it


def _fast_output(raw: Any) -> Output | None:
    if type(raw) is not dict:
        return None
    get = raw.get
    url, kind, node, text = get("url"), get("outputType"), get("nodeId"), get("text")
    if url is None:
        url = get("outputUrl")
    if text is None:
        text = get("content", get("output"))
    if (
        (url is not None and type(url) is not str)
        or (kind is not None and type(kind) is not str)
        or (node is not None and type(node) is not str)
        or (text is not None and type(text) is not str)
    ):
        return None
    return Output(url, kind, node, text)
