"""Every exception the library raises, and the one table that maps RunningHub codes to them.

::

    RunningHubError                       base of everything raised here
    ├── APIError                          RunningHub answered "no" (.code, .message, .endpoint)
    │   ├── AuthenticationError           bad, unknown or wrong-tier key (1002, 1014, 806, ...)
    │   ├── RateLimitedError              slow down (1003, 1011, HTTP 429)
    │   ├── ConcurrencyLimitError         too many tasks at once on the account (421, 415, 1520)
    │   ├── InsufficientBalanceError      not enough money or coins (416, 812)
    │   ├── InvalidParametersError        bad input (1007, 301, ...); also a ValueError
    │   │   ├── FileTooLargeError         an upload or image over the limit (1008, 809)
    │   │   └── ContentRejectedError      moderation (1501, 1505)
    │   ├── TaskNotFoundError             unknown or expired task id (1004, 423, 807)
    │   └── ServerError                   RunningHub's side failed (1005, 1010, HTTP 5xx, ...)
    ├── TransportError                    no usable answer arrived
    │   ├── ConnectError                  could not connect: the request was never sent
    │   ├── RequestTimeoutError           no answer in time; also a TimeoutError
    │   └── ProtocolError                 connection dropped mid-answer, or the body was not JSON
    │       └── UnexpectedContentError    a downloaded file is not the kind it claims to be
    ├── TaskError                         the remote job ended badly (.task_id)
    │   ├── TaskFailedError               status FAILED (.code, .message, .failed_reason)
    │   ├── TaskCancelledError            status CANCEL: cancelled on RunningHub
    │   └── JobTimeoutError               the client's job deadline passed; also a TimeoutError
    ├── SubmitOutcomeUnknownError         a submit may or may not have been accepted; never resent
    ├── CoordinationUnavailableError      the shared store (Redis) was unreachable for too long
    ├── JournalOwnershipError             another worker owns this journal key now
    ├── JournalLockedError                another process has the journal file open
    └── ClientClosedError                 the client closed while jobs were still outstanding

Local cancellation (``asyncio.CancelledError``) is never wrapped.  Messages never carry
the API key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import FailedReason

__all__ = [
    "RETRYABLE_SUBMIT_CODES",
    "APIError",
    "AuthenticationError",
    "ClientClosedError",
    "ConcurrencyLimitError",
    "ConnectError",
    "ContentRejectedError",
    "CoordinationUnavailableError",
    "FileTooLargeError",
    "InsufficientBalanceError",
    "InvalidParametersError",
    "JobTimeoutError",
    "JournalLockedError",
    "JournalOwnershipError",
    "ProtocolError",
    "RateLimitedError",
    "RequestTimeoutError",
    "RunningHubError",
    "ServerError",
    "SubmitOutcomeUnknownError",
    "TaskCancelledError",
    "TaskError",
    "TaskFailedError",
    "TaskNotFoundError",
    "TransportError",
    "UnexpectedContentError",
    "api_error",
    "invalid_parameter",
    "is_transient",
    "leaves_outcome_unknown",
    "proves_not_accepted",
]


class RunningHubError(Exception):
    """Base class of every exception this library raises."""


class APIError(RunningHubError):
    """RunningHub answered, and the answer was an error code.

    Attributes:
        code: the code as RunningHub sent it, as a string (``"1007"``, ``"421"``, or
            ``"HTTP 502"`` for an HTTP-level error).
        message: RunningHub's message (often ``"English | 中文"``).
        endpoint: the path that was called, when known.
        http_status: the HTTP status of the answer, when known.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        endpoint: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.endpoint = endpoint
        self.http_status = http_status
        where = f" from {endpoint}" if endpoint else ""
        super().__init__(f"RunningHub error {code}{where}: {message}")


class AuthenticationError(APIError):
    """The API key is missing, unknown, expired, or not allowed to call this endpoint."""


class RateLimitedError(APIError):
    """RunningHub asked the client to slow down (1003 rate limit, 1011 busy, HTTP 429)."""


class ConcurrencyLimitError(APIError):
    """The account already runs as many tasks as it may (421, 415, 1520, 814).

    The client absorbs these on submit by queueing the job locally; you see this
    only from calls that cannot be queued.
    """


class InsufficientBalanceError(APIError):
    """The account has not enough money or coins for the task."""


class InvalidParametersError(APIError, ValueError):
    """The request's parameters are wrong.

    Raised by RunningHub (1007, 301, ...) or, before anything is sent, by the
    client's own validation of catalogued endpoints; then ``code`` is ``"local"``
    and ``field``, ``value`` and ``allowed`` say what is wrong.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        endpoint: str | None = None,
        http_status: int | None = None,
        field: str | None = None,
        value: object = None,
        allowed: str | None = None,
    ) -> None:
        super().__init__(code, message, endpoint=endpoint, http_status=http_status)
        self.field = field
        self.value = value
        self.allowed = allowed


class FileTooLargeError(InvalidParametersError):
    """A file is larger than RunningHub accepts."""


class ContentRejectedError(InvalidParametersError):
    """Content moderation rejected the prompt or an image (1501, 1505)."""


class TaskNotFoundError(APIError):
    """RunningHub does not know the task id, or the task has expired (1004)."""


class ServerError(APIError):
    """RunningHub failed on its side (internal error, unavailable, HTTP 5xx)."""


class TransportError(RunningHubError):
    """No usable answer arrived from RunningHub.

    Attributes:
        request_sent: False only when the request provably never left this machine.
    """

    request_sent: bool = True


class ConnectError(TransportError, ConnectionError):
    """The connection could not be made, so the request was never sent."""

    request_sent = False


class RequestTimeoutError(TransportError, TimeoutError):
    """An HTTP request got no answer within its timeout."""

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class ProtocolError(TransportError):
    """The connection broke before a full answer arrived, or the answer was malformed.

    Attributes:
        task_ended: the answer said the task had ended (SUCCESS, FAILED, CANCEL) but
            could not be read; asking again would get the same answer, so the job
            ends with this error instead of being checked until its deadline.
    """

    task_ended: bool = False


class UnexpectedContentError(ProtocolError):
    """A downloaded file's bytes are not of the kind its name or type claims.

    An HTML login page served with HTTP 200 instead of an image is the usual case;
    nothing is written under the expected name.

    Attributes:
        expected: the kind the output claimed (``"png"``, ``"mp4"``, ...).
    """

    def __init__(self, message: str, *, expected: str) -> None:
        super().__init__(message)
        self.expected = expected


class TaskError(RunningHubError):
    """A job ended without a result.

    Attributes:
        task_id: the RunningHub task id, so the job can be inspected or re-attached.
    """

    def __init__(self, task_id: str, message: str) -> None:
        self.task_id = task_id
        super().__init__(message)


class TaskFailedError(TaskError):
    """The task ended FAILED on RunningHub.

    Attributes:
        code: RunningHub's error code (``"1015"`` generation failed, ``"1501"``
            moderation, ...).
        message: RunningHub's message.
        failed_reason: the structured reason (node, exception, traceback), if any.
    """

    def __init__(
        self,
        task_id: str,
        code: str,
        message: str,
        failed_reason: FailedReason | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.failed_reason = failed_reason
        detail = f": {message}" if message else ""
        super().__init__(task_id, f"task {task_id} failed with code {code or '?'}{detail}")


class TaskCancelledError(TaskError):
    """The task was cancelled on RunningHub (status CANCEL).

    This is remote cancellation; local cancellation stays ``CancelledError``.
    """

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id, f"task {task_id} was cancelled on RunningHub")


class JobTimeoutError(TaskError, TimeoutError):
    """The job did not end within the client's ``job_timeout``.

    The client asked RunningHub to cancel the task and stopped tracking it.
    """

    def __init__(self, task_id: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(task_id, f"task {task_id} did not finish within {timeout:g} s")


class SubmitOutcomeUnknownError(RunningHubError):
    """A submit was sent but no answer came back, so the task may exist (and cost money).

    The client never resends such a submit by itself.  Look the task up in the
    RunningHub console, or resubmit knowingly.

    Attributes:
        endpoint: the endpoint the submit went to.
        params: the body that was sent.
    """

    def __init__(self, endpoint: str, params: Mapping[str, Any], cause: BaseException) -> None:
        self.endpoint = endpoint
        self.params = params
        keys = ", ".join(sorted(params)) or "no params"
        super().__init__(
            f"submit to {endpoint} ({keys}) may or may not have been accepted "
            f"({type(cause).__name__}: {cause}); it was not resent"
        )


class CoordinationUnavailableError(RunningHubError, ConnectionError):
    """The shared store (Redis) could not be reached for longer than allowed.

    Raised by ``RedisLimiter.acquire_slot`` when no slot could be agreed on within
    the limiter's ``unavailable_timeout``, and by ``RedisJournal`` methods when a
    record could not be written or read within the journal's bound: nothing was
    submitted on the strength of it.
    """


class JournalOwnershipError(RunningHubError):
    """Another worker owns this journal key now: this one must not submit it.

    Raised by ``RedisJournal.intent`` when the key was claimed by another writer
    since this one last claimed it (a worker thought dead that woke up), so its
    POST would pay a second time for work someone else has taken over.

    Attributes:
        key: the caller key.
        owner: the writer that owns it now.
        epoch: the key's current ownership epoch.
    """

    def __init__(self, key: str, owner: str, epoch: int) -> None:
        super().__init__(f"journal key {key!r} is owned by {owner!r} now (epoch {epoch})")
        self.key = key
        self.owner = owner
        self.epoch = epoch


class JournalLockedError(RunningHubError, OSError):
    """Another process has the journal file open: one file serves one process."""


class ClientClosedError(RunningHubError):
    """The client was closed, or not yet opened, while the operation needed it.

    Attributes:
        task_ids: the tasks still outstanding when the client closed (may be empty).
    """

    def __init__(self, message: str, task_ids: Iterable[str] = ()) -> None:
        self.task_ids = tuple(task_ids)
        super().__init__(message)


# One row per documented code (runninghub-api.md section 3): the class it raises.
# v2 task endpoints send codes as strings, legacy envelopes as numbers; both are
# looked up as strings.
_CODES: Mapping[str, type[APIError]] = {
    # v2
    "1000": ServerError,
    "1001": InvalidParametersError,
    "1002": AuthenticationError,
    "1003": RateLimitedError,
    "1004": TaskNotFoundError,
    "1005": ServerError,
    "1006": ServerError,
    "1007": InvalidParametersError,
    "1008": FileTooLargeError,
    "1009": InvalidParametersError,
    "1010": ServerError,
    "1011": RateLimitedError,
    "1012": ServerError,
    "1013": InvalidParametersError,
    "1014": AuthenticationError,
    "1015": ServerError,
    "1101": InvalidParametersError,
    "1501": ContentRejectedError,
    "1504": ServerError,
    "1505": ContentRejectedError,
    "1520": ConcurrencyLimitError,
    "1601": AuthenticationError,
    # legacy (and shared numbers)
    "-1": AuthenticationError,
    "1": TaskNotFoundError,
    "301": InvalidParametersError,
    "380": InvalidParametersError,
    "401": AuthenticationError,
    "412": AuthenticationError,
    "415": ConcurrencyLimitError,
    "416": InsufficientBalanceError,
    "421": ConcurrencyLimitError,
    "423": TaskNotFoundError,
    "433": InvalidParametersError,
    "435": AuthenticationError,
    "436": AuthenticationError,
    "500": ServerError,
    "605": InsufficientBalanceError,
    "801": AuthenticationError,
    "802": AuthenticationError,
    "803": InvalidParametersError,
    "804": APIError,
    "805": APIError,
    "806": AuthenticationError,
    "807": TaskNotFoundError,
    "808": ServerError,
    "809": FileTooLargeError,
    "810": InvalidParametersError,
    "811": AuthenticationError,
    "812": InsufficientBalanceError,
    "813": APIError,
    "814": ConcurrencyLimitError,
    "901": InvalidParametersError,
}

RETRYABLE_SUBMIT_CODES = frozenset({"421", "415", "1003", "1011", "1520"})
"""Codes that prove a submit was not accepted and may be sent again later (design rule 1)."""


def api_error(
    code: object,
    message: str,
    *,
    endpoint: str | None = None,
    http_status: int | None = None,
) -> APIError:
    """The exception for RunningHub error *code* (a string or number), not raised."""
    key = str(code).strip()
    cls = _CODES.get(key, APIError)
    return cls(key, message, endpoint=endpoint, http_status=http_status)


# Codes that say "not now, try later" without anything having been done.
_TRANSIENT_CODES = frozenset({"1003", "1005", "1010", "1011", "1012", "500", "1504"})


def proves_not_accepted(exc: BaseException) -> bool:
    """Whether *exc*, raised by a submit, proves RunningHub did not take the task.

    Such a submit may be sent again (design rule 1): the connection was never
    made, or RunningHub answered with a rejection that creates no task.
    """
    if isinstance(exc, TransportError):
        return not exc.request_sent
    if isinstance(exc, APIError):
        return exc.code in RETRYABLE_SUBMIT_CODES or exc.http_status == 429
    return False


def leaves_outcome_unknown(exc: BaseException) -> bool:
    """Whether *exc*, raised by a submit, leaves open that RunningHub took the task.

    The request left and no answer came back, or the answer was a server error
    (a proxy's 5xx says nothing of what happened behind it).
    """
    if isinstance(exc, SubmitOutcomeUnknownError):
        return True
    if isinstance(exc, TransportError):
        return exc.request_sent
    return isinstance(exc, ServerError) and (exc.http_status or 0) >= 500


def is_transient(exc: BaseException) -> bool:
    """Whether a call that is safe to repeat (a query, an upload) should be tried again."""
    if isinstance(exc, TransportError | ServerError | RateLimitedError):
        return True
    return isinstance(exc, APIError) and exc.code in _TRANSIENT_CODES


def invalid_parameter(
    field: str,
    problem: str,
    *,
    value: object = None,
    allowed: str | None = None,
    endpoint: str | None = None,
) -> InvalidParametersError:
    """The local (nothing sent) `InvalidParametersError` for *field*, not raised."""
    tail = f"; allowed: {allowed}" if allowed else ""
    return InvalidParametersError(
        "local",
        f"{field} {problem}{tail}",
        endpoint=endpoint,
        field=field,
        value=value,
        allowed=allowed,
    )


def http_error(status: int, reason: str, *, endpoint: str | None = None) -> APIError:
    """The exception for an HTTP error status that carried no RunningHub body."""
    cls: type[APIError]
    if status == 429:
        cls = RateLimitedError
    elif status in (401, 403):
        cls = AuthenticationError
    elif status >= 500:
        cls = ServerError
    else:
        cls = APIError
    return cls(f"HTTP {status}", reason or "HTTP error", endpoint=endpoint, http_status=status)
