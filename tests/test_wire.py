"""The converter: documented examples parse exactly; structure(unstructure(x)) == x."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runninghub_async import (
    AccountStatus,
    FailedReason,
    Output,
    QueueStatus,
    TaskSnapshot,
    TaskStatus,
    UploadedFile,
    Usage,
)
from runninghub_async._fast_wire import fast_snapshot
from runninghub_async._wire import make_converter

conv = make_converter()

# The documented examples of runninghub-api.md, verbatim.
SUCCESS: dict[str, Any] = {
    "taskId": "2013508786110730241",
    "status": "SUCCESS",
    "errorCode": "",
    "errorMessage": "",
    "failedReason": {},
    "usage": {
        "consumeMoney": None,
        "consumeCoins": None,
        "taskCostTime": "0",
        "thirdPartyConsumeMoney": None,
    },
    "results": [
        {
            "url": "https://rh-images-1252422369.cos.ap-beijing.myqcloud.com/.../output/ComfyUI_00001_plhjr_1768892915.png",
            "nodeId": "2",
            "outputType": "png",
            "text": None,
        }
    ],
    "clientId": "",
    "promptTips": "",
}
NOT_FOUND: dict[str, Any] = {
    "taskId": "2100773838112505858",
    "status": "",
    "errorCode": "1004",
    "errorMessage": "Task not found, please check the task ID | 任务不存在或已过期，请检查任务ID",
    "results": None,
    "failedReason": {},
    "usage": None,
}
FAILED: dict[str, Any] = {
    "taskId": "1904163390028185602",
    "status": "FAILED",
    "errorCode": "1000",
    "errorMessage": "unknown error",
    "failedReason": {
        "exception_type": "TypeError",
        "node_id": "276",
        "node_name": "SONIC_PreData",
        "exception_message": "bad input",
        "traceback": ["line 1", "line 2"],
        "current_inputs": {"a": 1},
        "current_outputs": {},
    },
    "results": None,
}


def test_success_example_parses_exactly() -> None:
    """The official SUCCESS example."""
    snap = conv.structure(SUCCESS, TaskSnapshot)
    assert snap == TaskSnapshot(
        task_id="2013508786110730241",
        status=TaskStatus.SUCCESS,
        usage=Usage(task_cost_time=0.0),
        outputs=(Output(url=SUCCESS["results"][0]["url"], output_type="png", node_id="2"),),
    )


def test_not_found_example_parses_exactly() -> None:
    """The observed 1004 body: empty status becomes UNKNOWN, usage None."""
    snap = conv.structure(NOT_FOUND, TaskSnapshot)
    assert snap.status is TaskStatus.UNKNOWN
    assert snap.error_code == "1004"
    assert snap.usage is None
    assert snap.outputs == ()


def test_failed_example_keeps_the_reason() -> None:
    """A workflow failure's failedReason is structured, traceback as a tuple."""
    snap = conv.structure(FAILED, TaskSnapshot)
    assert snap.status is TaskStatus.FAILED
    assert snap.failed_reason == FailedReason(
        node_id="276",
        node_name="SONIC_PreData",
        exception_type="TypeError",
        exception_message="bad input",
        traceback=("line 1", "line 2"),
        current_inputs={"a": 1},
        current_outputs={},
    )


def test_submit_example_and_tolerance() -> None:
    """Submit shape, a numeric taskId, errorCode 0, unknown status and extra keys."""
    snap = conv.structure(
        {"taskId": 2013508786110730241, "status": "PAUSED", "errorCode": 0, "extra": {"x": 1}},
        TaskSnapshot,
    )
    assert snap.task_id == "2013508786110730241"
    assert snap.status is TaskStatus.UNKNOWN
    assert snap.error_code == ""


def test_output_fallback_names() -> None:
    """outputUrl and content are accepted where url and text are missing."""
    out = conv.structure({"outputUrl": "https://x/y.png", "content": "hi"}, Output)
    assert out == Output(url="https://x/y.png", text="hi")


def test_account_queue_and_upload_examples() -> None:
    """String-valued management bodies become typed values."""
    account = conv.structure(
        {
            "remainCoins": "99999",
            "currentTaskCounts": "0",
            "remainMoney": "999",
            "currency": "CNY",
            "apiType": "NORMAL",
        },
        AccountStatus,
    )
    assert account == AccountStatus(99999, 0, Decimal("999"), "CNY", "NORMAL")
    queue = conv.structure(
        {
            "apiKeyType": "NORMAL",
            "concurrentLimit": "2",
            "runningCount": "0",
            "queuedCount": "0",
            "totalCurrentTasks": "0",
        },
        QueueStatus,
    )
    assert queue == QueueStatus("NORMAL", 2, 0, 0, 0)
    upload = conv.structure(
        {
            "type": "image",
            "download_url": "https://x/a.png",
            "filename": "openapi/a.png",
            "size": "3490",
        },
        UploadedFile,
    )
    assert upload == UploadedFile("https://x/a.png", "openapi/a.png", 3490, "image")


def test_null_money_is_none() -> None:
    """remainMoney and currency may be null."""
    account = conv.structure(
        {
            "remainCoins": "1",
            "currentTaskCounts": "2",
            "remainMoney": None,
            "currency": None,
            "apiType": "SHARED",
        },
        AccountStatus,
    )
    assert account.remain_money is None
    assert account.currency is None


text = st.text(max_size=20)
opt_text = st.none() | text
# Plausible amounts: anything else is dropped on reading (see the test below).
money = st.none() | st.decimals(
    min_value=0, max_value=Decimal("1e14"), allow_nan=False, allow_infinity=False, places=2
)
outputs = st.builds(Output, url=opt_text, output_type=opt_text, node_id=opt_text, text=opt_text)
usage = st.builds(
    Usage,
    consume_money=money,
    consume_coins=money,
    task_cost_time=st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False),
    third_party_consume_money=money,
)
reasons = st.builds(
    FailedReason,
    node_id=opt_text,
    node_name=opt_text,
    exception_type=opt_text,
    exception_message=opt_text,
    traceback=st.tuples(text, text),
    current_inputs=st.none() | st.dictionaries(text, text, max_size=2),
    current_outputs=st.none(),
)
snapshots = st.builds(
    TaskSnapshot,
    task_id=st.from_regex(r"\A[0-9]{19}\Z"),
    status=st.sampled_from(list(TaskStatus)),
    error_code=st.sampled_from(["", "1004", "1015", "421"]),
    error_message=text,
    failed_reason=st.none() | reasons,
    usage=st.none() | usage,
    outputs=st.lists(outputs, max_size=3).map(tuple),
    client_id=text,
    prompt_tips=text,
)


@given(snapshots)
def test_task_snapshot_round_trips(snapshot: TaskSnapshot) -> None:
    """Any snapshot survives unstructure -> JSON-like dict -> structure."""
    assert conv.structure(conv.unstructure(snapshot), TaskSnapshot) == snapshot


@given(
    st.builds(
        AccountStatus,
        remain_coins=st.none() | st.integers(min_value=0),
        current_task_counts=st.integers(min_value=0),
        remain_money=money,
        currency=st.none() | st.sampled_from(["CNY", "USD"]),
        api_type=st.sampled_from(["NORMAL", "SHARED", "EXCLUSIVE"]),
    )
)
def test_account_round_trips(account: AccountStatus) -> None:
    """Account values survive the string-typed wire."""
    assert conv.structure(conv.unstructure(account), AccountStatus) == account


@given(
    st.builds(
        QueueStatus,
        api_key_type=text,
        concurrent_limit=st.integers(0, 10**6),
        running_count=st.integers(0, 10**6),
        queued_count=st.integers(0, 10**6),
        total_current_tasks=st.integers(0, 10**6),
    )
)
def test_queue_status_round_trips(queue: QueueStatus) -> None:
    """Queue counts survive the string-typed wire."""
    assert conv.structure(conv.unstructure(queue), QueueStatus) == queue


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "x",
        {
            "concurrentLimit": "two",
            "apiKeyType": "N",
            "runningCount": "0",
            "queuedCount": "0",
            "totalCurrentTasks": "0",
        },
    ],
)
def test_malformed_bodies_raise(bad: Any) -> None:
    """Shapes that do not fit raise instead of producing half-filled objects."""
    with pytest.raises(Exception):  # noqa: B017,PT011 - cattrs raises its own groups
        conv.structure(bad, QueueStatus)


_SCALARS = st.one_of(
    st.none(),
    st.sampled_from(["", "0", "0.40", "40", " 7 ", "abc", "NaN", "1e3", "SUCCESS", "running"]),
    st.text(max_size=8),
    st.integers(-5, 5),
    st.booleans(),
    st.floats(allow_nan=False),
)
_OUTPUT = st.dictionaries(
    st.sampled_from(["url", "outputUrl", "outputType", "nodeId", "text", "content", "output", "x"]),
    _SCALARS,
)
_ANSWER = st.fixed_dictionaries(
    {},
    optional={
        "taskId": st.one_of(st.sampled_from(["1001", "", "42"]), st.integers(0, 9), st.none()),
        "status": st.one_of(
            st.sampled_from(["QUEUED", "RUNNING", "SUCCESS", "FAILED", "CANCEL", "success", ""]),
            _SCALARS,
            st.lists(st.integers(), max_size=1),
        ),
        "errorCode": _SCALARS,
        "errorMessage": _SCALARS,
        "failedReason": st.one_of(st.just({}), st.none(), st.just({"node_id": 3}), _SCALARS),
        "usage": st.one_of(
            st.none(),
            _SCALARS,
            st.dictionaries(
                st.sampled_from(
                    ["consumeMoney", "consumeCoins", "taskCostTime", "thirdPartyConsumeMoney"]
                ),
                _SCALARS,
            ),
        ),
        "results": st.one_of(st.none(), st.lists(st.one_of(_OUTPUT, _SCALARS), max_size=3)),
        "clientId": _SCALARS,
        "promptTips": _SCALARS,
        "extra": _SCALARS,
    },
)


@given(_ANSWER)
def test_the_fast_snapshot_reads_what_the_converter_reads(answer: dict[str, Any]) -> None:
    """Where the fast path answers, the converter gives the same snapshot."""
    fast = fast_snapshot(answer)
    if fast is None:
        return
    # repr: a Decimal NaN is not equal to itself.
    assert repr(fast) == repr(conv.structure(answer, TaskSnapshot))


@given(st.one_of(_SCALARS, st.sampled_from(["-1", "NaN", "sNaN", "-Infinity", "1e15", "1e99999"])))
def test_an_implausible_cost_is_dropped_by_both_readers(value: Any) -> None:
    """No reader lets a negative, non-finite or absurd amount into a result."""
    answer = {"taskId": "1", "status": "SUCCESS", "usage": {"consumeMoney": value}}
    for snapshot in (fast_snapshot(answer), conv.structure(answer, TaskSnapshot)):
        if snapshot is None:
            continue
        assert snapshot.usage is not None
        amount = snapshot.usage.consume_money
        assert amount is None or (amount.is_finite() and 0 <= amount < Decimal("1e15"))


def test_the_fast_snapshot_takes_the_usual_answers() -> None:
    """Pending, succeeded and failed answers of the documented shape skip the converter."""
    pending = {"taskId": "1", "status": "RUNNING", "errorCode": "", "results": None}
    done = {
        "taskId": "1",
        "status": "SUCCESS",
        "errorCode": "",
        "errorMessage": "",
        "failedReason": {},
        "usage": {"consumeMoney": "0.40", "consumeCoins": "40", "taskCostTime": "0"},
        "results": [{"url": "https://cdn/x.png", "nodeId": "2", "outputType": "png"}],
    }
    for answer in (pending, done, {**done, "status": "FAILED", "errorCode": "805"}):
        assert fast_snapshot(answer) == conv.structure(answer, TaskSnapshot)
    assert fast_snapshot({**done, "taskId": 1}) is None  # the converter turns it into "1"
