"""Domain types: frozen attrs classes with Python names.  They know nothing about JSON;
``_wire`` owns the mapping to RunningHub's camelCase, string-typed wire format."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

__all__ = [
    "AccountStatus",
    "BatchItem",
    "FailedReason",
    "JobEvent",
    "JobResult",
    "Output",
    "QueueStatus",
    "TaskSnapshot",
    "TaskStatus",
    "UploadedFile",
    "Usage",
]


class TaskStatus(enum.Enum):
    """A task's status as ``/openapi/v2/query`` reports it.

    ``UNKNOWN`` stands for any status this version does not know (and for the
    empty status of a not-found task), so a new status never crashes a client.
    """

    CREATE = "CREATE"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCEL = "CANCEL"
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        """True for SUCCESS, FAILED and CANCEL: the task will not change again."""
        # Identity, not a set: an Enum member's hash is a Python call, on every check.
        return self is TaskStatus.SUCCESS or self is TaskStatus.FAILED or self is TaskStatus.CANCEL


@attrs.frozen
class Output:
    """One output of a finished task.

    Attributes:
        url: where the file is (valid for about 24 hours), or None for text outputs.
        output_type: the file extension RunningHub reports (``"png"``, ``"mp4"``, ...).
        node_id: the workflow node that produced it.
        text: the text of a text output, else None.
    """

    url: str | None = None
    output_type: str | None = None
    node_id: str | None = None
    text: str | None = None


@attrs.frozen
class Usage:
    """What a task cost.  RunningHub sends these as strings; money is ``Decimal``.

    Attributes:
        consume_money: the runtime fee, in the account's currency.
        consume_coins: RunningHub coins spent.
        task_cost_time: seconds the task ran.
        third_party_consume_money: the fee of a third-party model, if any.
    """

    consume_money: Decimal | None = None
    consume_coins: Decimal | None = None
    task_cost_time: float | None = None
    third_party_consume_money: Decimal | None = None


@attrs.frozen
class FailedReason:
    """Why a task failed, as far as RunningHub says (mostly for workflow tasks)."""

    node_id: str | None = None
    node_name: str | None = None
    exception_type: str | None = None
    exception_message: str | None = None
    traceback: tuple[str, ...] = ()
    current_inputs: Any = None
    current_outputs: Any = None


@attrs.frozen
class TaskSnapshot:
    """One answer of ``/openapi/v2/query``: a task's state at one moment.

    ``error_code`` and ``error_message`` are empty strings when there is no error.
    """

    task_id: str
    status: TaskStatus
    error_code: str = ""
    error_message: str = ""
    failed_reason: FailedReason | None = None
    usage: Usage | None = None
    outputs: tuple[Output, ...] = ()
    client_id: str = ""
    prompt_tips: str = ""


@attrs.frozen
class JobEvent:
    """A job's status changed (``Job.events()``).

    Attributes:
        status: the new status; the last event of a job is terminal.
        at: when the client saw it, in seconds since the epoch (``time.time()``).
        eta: seconds until the job likely ends, from jobs of the same endpoint
            that already finished (None while nothing is known; 0 at the end).
    """

    status: TaskStatus
    at: float
    eta: float | None = None


@attrs.frozen
class JobResult:
    """The result of a job that ended in SUCCESS.

    Attributes:
        task_id: the RunningHub task id.
        status: always ``TaskStatus.SUCCESS``.
        outputs: the outputs, one per file.
        usage: what it cost, when RunningHub says.
        endpoint: the endpoint the job was submitted to, when the client knows it.
    """

    task_id: str
    status: TaskStatus
    outputs: tuple[Output, ...]
    usage: Usage | None = None
    endpoint: str | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        """The URLs of the file outputs, in order."""
        return tuple(o.url for o in self.outputs if o.url)


@attrs.frozen
class BatchItem:
    """One finished item of ``RunningHub.run_many``.

    Exactly one of ``result`` and ``error`` is set.

    Attributes:
        index: the position of the item's params in the input.
        params: the params as given.
        result: the job's result on success.
        error: what went wrong otherwise (never a ``CancelledError``).
        task_id: the task id, once the submit was accepted.
    """

    index: int
    params: Mapping[str, Any]
    result: JobResult | None = None
    error: Exception | None = None
    task_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when the item succeeded."""
        return self.error is None


@attrs.frozen
class UploadedFile:
    """A file uploaded through ``/openapi/v2/media/upload/binary``.

    Attributes:
        download_url: the URL to pass as an image param (valid about one day).
        file_name: the name to pass to workflow ``LoadImage``-style nodes.
        size: the size in bytes.
        type: ``"image"``, ``"video"``, ``"audio"`` or ``"zip"``.
    """

    download_url: str
    file_name: str
    size: int
    type: str = "image"


@attrs.frozen
class AccountStatus:
    """The account behind the API key (``/uc/openapi/accountStatus``)."""

    remain_coins: int | None
    current_task_counts: int
    remain_money: Decimal | None
    currency: str | None
    api_type: str


@attrs.frozen
class QueueStatus:
    """The key's concurrency limit and load (``/openapi/v2/queue/status``)."""

    api_key_type: str
    concurrent_limit: int
    running_count: int
    queued_count: int
    total_current_tasks: int
