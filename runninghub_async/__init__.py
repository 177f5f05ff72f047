"""runninghub_async: an asyncio-native client for RunningHub.

One client owns one HTTP session, a limiter (job slots plus a request-rate
bucket) and ONE shared poller that follows every outstanding task::

    from runninghub_async import RunningHub

    async with RunningHub() as client:
        result = await client.run(
            "rhart-image-n-pro/text-to-image", {"prompt": "a lighthouse", "resolution": "1k"}
        )

The fake server for tests lives in ``runninghub_async.testing`` (imported on demand).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import attrs as _attrs

from ._client import ClientStatistics as ClientStatistics
from ._client import RunningHub as RunningHub
from ._config import PollPolicy as PollPolicy
from ._config import RetryPolicy as RetryPolicy
from ._config import Timeouts as Timeouts
from ._errors import APIError as APIError
from ._errors import AuthenticationError as AuthenticationError
from ._errors import ClientClosedError as ClientClosedError
from ._errors import ConcurrencyLimitError as ConcurrencyLimitError
from ._errors import ConnectError as ConnectError
from ._errors import ContentRejectedError as ContentRejectedError
from ._errors import CoordinationUnavailableError as CoordinationUnavailableError
from ._errors import FileTooLargeError as FileTooLargeError
from ._errors import InsufficientBalanceError as InsufficientBalanceError
from ._errors import InvalidParametersError as InvalidParametersError
from ._errors import JobTimeoutError as JobTimeoutError
from ._errors import JournalLockedError as JournalLockedError
from ._errors import JournalOwnershipError as JournalOwnershipError
from ._errors import ProtocolError as ProtocolError
from ._errors import RateLimitedError as RateLimitedError
from ._errors import RequestTimeoutError as RequestTimeoutError
from ._errors import RunningHubError as RunningHubError
from ._errors import ServerError as ServerError
from ._errors import SubmitOutcomeUnknownError as SubmitOutcomeUnknownError
from ._errors import TaskCancelledError as TaskCancelledError
from ._errors import TaskError as TaskError
from ._errors import TaskFailedError as TaskFailedError
from ._errors import TaskNotFoundError as TaskNotFoundError
from ._errors import TransportError as TransportError
from ._extras_models import ApiKeyInfo as ApiKeyInfo
from ._extras_models import LoraUpload as LoraUpload
from ._extras_models import Price as Price
from ._extras_models import Resource as Resource
from ._extras_models import ResourcePage as ResourcePage
from ._extras_models import WebhookDetail as WebhookDetail
from ._hooks import Hooks as Hooks
from ._images import ImageInput as ImageInput
from ._job import Job as Job
from ._journal import FileJournal as FileJournal
from ._journal import Journal as Journal
from ._journal import JournalEntry as JournalEntry
from ._limiter import Limiter as Limiter
from ._limiter import LimiterStatistics as LimiterStatistics
from ._limiter import Slot as Slot
from ._models import AccountStatus as AccountStatus
from ._models import BatchItem as BatchItem
from ._models import FailedReason as FailedReason
from ._models import JobEvent as JobEvent
from ._models import JobResult as JobResult
from ._models import Output as Output
from ._models import QueueStatus as QueueStatus
from ._models import TaskSnapshot as TaskSnapshot
from ._models import TaskStatus as TaskStatus
from ._models import UploadedFile as UploadedFile
from ._models import Usage as Usage
from ._nodes import NodeInput as NodeInput
from ._nodes import inputs_body as inputs_body
from ._poller import PollerStatistics as PollerStatistics
from ._pricing import BudgetExceededError as BudgetExceededError
from ._pricing import CostBudget as CostBudget

try:
    __version__ = version("runninghub-async")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "APIError",
    "AccountStatus",
    "ApiKeyInfo",
    "AuthenticationError",
    "BatchItem",
    "BudgetExceededError",
    "ClientClosedError",
    "ClientStatistics",
    "ConcurrencyLimitError",
    "ConnectError",
    "ContentRejectedError",
    "CoordinationUnavailableError",
    "CostBudget",
    "FailedReason",
    "FileJournal",
    "FileTooLargeError",
    "Hooks",
    "ImageInput",
    "InsufficientBalanceError",
    "InvalidParametersError",
    "Job",
    "JobEvent",
    "JobResult",
    "JobTimeoutError",
    "Journal",
    "JournalEntry",
    "JournalLockedError",
    "JournalOwnershipError",
    "Limiter",
    "LimiterStatistics",
    "LoraUpload",
    "NodeInput",
    "Output",
    "PollPolicy",
    "PollerStatistics",
    "Price",
    "ProtocolError",
    "QueueStatus",
    "RateLimitedError",
    "RequestTimeoutError",
    "Resource",
    "ResourcePage",
    "RetryPolicy",
    "RunningHub",
    "RunningHubError",
    "ServerError",
    "Slot",
    "SubmitOutcomeUnknownError",
    "TaskCancelledError",
    "TaskError",
    "TaskFailedError",
    "TaskNotFoundError",
    "TaskSnapshot",
    "TaskStatus",
    "Timeouts",
    "TransportError",
    "UploadedFile",
    "Usage",
    "WebhookDetail",
    "__version__",
    "inputs_body",
]


def _rename_exports() -> None:
    # Show exported names as runninghub_async.X in tracebacks and reprs, not as the
    # private module they live in (httpx does the same).
    # attrs classes get their string annotations resolved first, while they can still
    # be looked up in the module that defines them (the wire converter needs them).
    for name in __all__:
        obj = globals()[name]
        if isinstance(obj, type):
            if _attrs.has(obj):
                _attrs.resolve_types(obj)
            obj.__module__ = __name__
        elif callable(obj):
            obj.__module__ = __name__


_rename_exports()
