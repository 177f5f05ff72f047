"""aiohttp's exceptions, and each as one of ours (keeping whether the request left)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import aiohttp

from .._errors import ConnectError, ProtocolError, RequestTimeoutError, TransportError

__all__ = ["AIOHTTP_ERRORS", "ours"]

# What aiohttp raises (its own timeouts are TimeoutErrors); `ours` maps each to ours.
AIOHTTP_ERRORS: Final = (aiohttp.ClientError, TimeoutError)


def ours(exc: BaseException, what: str, redact: Callable[[str], str]) -> TransportError:
    """An aiohttp exception as ours, keeping whether the request was sent."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return RequestTimeoutError(f"connecting for {what} timed out", request_sent=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(f"could not connect for {what}: {redact(str(exc.os_error))}")
    if isinstance(exc, aiohttp.TooManyRedirects):
        return ProtocolError(f"{what}: too many redirects")
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return RequestTimeoutError(f"no answer for {what} in time")
    if isinstance(
        exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError
    ):
        return ProtocolError(f"connection lost during {what}")
    return TransportError(f"{what} failed: {type(exc).__name__}")
