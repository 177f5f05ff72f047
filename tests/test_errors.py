"""Every documented RunningHub code maps to its exception class."""

from __future__ import annotations

import pytest

import runninghub_async as rh
from runninghub_async._errors import RETRYABLE_SUBMIT_CODES, api_error, http_error

# runninghub-api.md section 3.3 (v2) and 3.4 (legacy): code -> class users can catch.
TABLE = {
    "1000": rh.ServerError,
    "1001": rh.InvalidParametersError,
    "1002": rh.AuthenticationError,
    "1003": rh.RateLimitedError,
    "1004": rh.TaskNotFoundError,
    "1005": rh.ServerError,
    "1006": rh.ServerError,
    "1007": rh.InvalidParametersError,
    "1008": rh.FileTooLargeError,
    "1009": rh.InvalidParametersError,
    "1010": rh.ServerError,
    "1011": rh.RateLimitedError,
    "1012": rh.ServerError,
    "1013": rh.InvalidParametersError,
    "1014": rh.AuthenticationError,
    "1015": rh.ServerError,
    "1101": rh.InvalidParametersError,
    "1501": rh.ContentRejectedError,
    "1504": rh.ServerError,
    "1505": rh.ContentRejectedError,
    "1520": rh.ConcurrencyLimitError,
    "1601": rh.AuthenticationError,
    "421": rh.ConcurrencyLimitError,
    "416": rh.InsufficientBalanceError,
    "-1": rh.AuthenticationError,
    "1": rh.TaskNotFoundError,
    "301": rh.InvalidParametersError,
    "380": rh.InvalidParametersError,
    "412": rh.AuthenticationError,
    "415": rh.ConcurrencyLimitError,
    "423": rh.TaskNotFoundError,
    "433": rh.InvalidParametersError,
    "435": rh.AuthenticationError,
    "436": rh.AuthenticationError,
    "500": rh.ServerError,
    "801": rh.AuthenticationError,
    "802": rh.AuthenticationError,
    "803": rh.InvalidParametersError,
    "804": rh.APIError,
    "805": rh.APIError,
    "806": rh.AuthenticationError,
    "807": rh.TaskNotFoundError,
    "808": rh.ServerError,
    "809": rh.FileTooLargeError,
    "810": rh.InvalidParametersError,
    "811": rh.AuthenticationError,
    "812": rh.InsufficientBalanceError,
    "813": rh.APIError,
    "814": rh.ConcurrencyLimitError,
    "901": rh.InvalidParametersError,
}


@pytest.mark.parametrize(("code", "cls"), sorted(TABLE.items()))
def test_code_maps_to_class(code: str, cls: type[rh.APIError]) -> None:
    """Each documented code raises exactly its class, with code and message kept."""
    error = api_error(code, "message | 消息", endpoint="/openapi/v2/x")
    assert type(error) is cls
    assert error.code == code
    assert error.message == "message | 消息"
    assert isinstance(error, rh.RunningHubError)


def test_numeric_codes_from_legacy_envelopes_are_strings() -> None:
    """Legacy envelopes send numbers; they map like the strings."""
    assert type(api_error(421, "TASK_QUEUE_MAXED")) is rh.ConcurrencyLimitError
    assert api_error(421, "x").code == "421"


def test_unknown_code_is_a_plain_api_error() -> None:
    """A code this version does not know still raises an APIError carrying it."""
    error = api_error("99999", "new")
    assert type(error) is rh.APIError
    assert error.code == "99999"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (429, rh.RateLimitedError),
        (401, rh.AuthenticationError),
        (502, rh.ServerError),
        (404, rh.APIError),
    ],
)
def test_http_statuses_map(status: int, cls: type[rh.APIError]) -> None:
    """HTTP errors without a RunningHub body map by status."""
    error = http_error(status, "reason")
    assert type(error) is cls
    assert error.http_status == status


def test_retryable_submit_codes_are_the_documented_rejections() -> None:
    """Only provable non-acceptance codes allow resending a submit."""
    assert frozenset({"421", "415", "1003", "1011", "1520"}) == RETRYABLE_SUBMIT_CODES


def test_builtin_mixins() -> None:
    """Errors also behave like the builtins they resemble."""
    assert issubclass(rh.InvalidParametersError, ValueError)
    assert issubclass(rh.RequestTimeoutError, TimeoutError)
    assert issubclass(rh.JobTimeoutError, TimeoutError)
    assert issubclass(rh.ConnectError, ConnectionError)
    error = rh.JobTimeoutError("123", 5.0)
    assert error.task_id == "123"
    assert "123" in str(error)
