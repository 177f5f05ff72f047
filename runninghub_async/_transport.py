"""The only module that speaks HTTP.

It owns two aiohttp sessions: one for the API host, which carries the key, and
one for result files on the CDN, which never does.  Every aiohttp exception and
every RunningHub error body becomes one of our exceptions here and nowhere else.
Idempotent calls are retried with capped, jittered backoff; a submit never is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, TypeVar

import aiohttp
import anyio
import cattrs

from ._config import RetryPolicy, Timeouts
from ._errors import (
    APIError,
    ConnectError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    api_error,
    http_error,
)
from ._limiter import RateGate
from ._models import TaskSnapshot, TaskStatus

__all__ = ["Transport"]

log = logging.getLogger("runninghub_async")
T = TypeVar("T")

USER_AGENT = "runninghub-async"

# Answers that say "try again later" without anything having happened.
_TRANSIENT_CODES = frozenset({"1003", "1005", "1010", "1011", "1012", "500"})

BodyFactory = Callable[[], Any]


@contextlib.contextmanager
def map_aiohttp_errors(path: str) -> Iterator[None]:
    """Turn aiohttp's exceptions into ours, keeping whether the request was sent."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise RequestTimeoutError(f"connecting for {path} timed out", request_sent=False) from exc
    except aiohttp.ClientConnectorError as exc:
        raise ConnectError(f"could not connect for {path}: {exc.os_error}") from exc
    except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
        raise RequestTimeoutError(f"no answer for {path} in time") from exc
    except (
        aiohttp.ServerDisconnectedError,
        aiohttp.ClientOSError,
        aiohttp.ClientPayloadError,
    ) as exc:
        raise ProtocolError(f"connection lost during {path}: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise TransportError(f"{path} failed: {type(exc).__name__}: {exc}") from exc


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, TransportError | ServerError | RateLimitedError):
        return True
    return isinstance(exc, APIError) and exc.code in _TRANSIENT_CODES


class Transport:
    """HTTP calls to RunningHub, authenticated, paced by *rate*, mapped to our errors."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        rate: RateGate,
        converter: cattrs.Converter,
        retry: RetryPolicy,
        timeouts: Timeouts,
        max_connections: int,
        rng: random.Random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._rate = rate
        self._converter = converter
        self._retry = retry
        self._rng = rng
        timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        headers = {"User-Agent": USER_AGENT}
        self._api = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=timeout,
            headers=headers,
            raise_for_status=False,
        )
        # Result URLs live on a CDN: a separate pool with no credentials at all.
        self._files = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=timeout,
            headers=headers,
            raise_for_status=False,
        )
        self.requests_sent = 0

    async def aclose(self) -> None:
        """Close both sessions."""
        try:
            await self._api.close()
        finally:
            await self._files.close()

    def redact(self, text: str) -> str:
        """*text* with the API key blanked out, should a server ever echo it."""
        return text.replace(self._key, "***") if self._key else text

    # -- the raw exchange ---------------------------------------------------

    async def _exchange(
        self, method: str, path: str, *, json_body: Any = None, data: Any = None
    ) -> tuple[int, Any]:
        """One request: wait for the rate gate, send, read and parse the JSON answer."""
        await self._rate.acquire()
        self.requests_sent += 1
        url = self.base_url + path
        headers = {"Authorization": f"Bearer {self._key}"}
        with map_aiohttp_errors(path):
            async with self._api.request(
                method, url, json=json_body, data=data, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
                reason = response.reason or ""
        log.debug("%s %s -> HTTP %s", method, path, status)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError as exc:
            if status >= 400:
                raise http_error(status, reason, endpoint=path) from None
            raise ProtocolError(f"{path} answered with malformed JSON") from exc
        if status >= 400 and not isinstance(parsed, dict):
            raise http_error(status, reason, endpoint=path)
        if status >= 500 or status == 429:
            # An error page that happens to parse as JSON is still an HTTP error.
            raise http_error(status, reason, endpoint=path)
        return status, parsed

    async def _retrying(self, call: Callable[[], Any], path: str) -> Any:
        """Await ``call()`` again on transient failures, with backoff, a few times."""
        for attempt in range(self._retry.attempts):
            try:
                return await call()
            except (TransportError, APIError) as exc:
                if attempt + 1 >= self._retry.attempts or not _is_transient(exc):
                    raise
                delay = self._retry.wait(attempt, self._rng)
                log.info("retrying %s in %.2f s after %s", path, delay, type(exc).__name__)
                await anyio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- v2 task endpoints (bare objects) -------------------------------------

    def _snapshot(self, parsed: Any, path: str) -> TaskSnapshot:
        if not isinstance(parsed, dict):
            raise ProtocolError(f"{path} answered with JSON that is not an object")
        try:
            snapshot: TaskSnapshot = self._converter.structure(parsed, TaskSnapshot)
        except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
            raise ProtocolError(f"{path} answered with an unexpected shape: {exc}") from exc
        return snapshot

    def _task_error(self, snapshot: TaskSnapshot, path: str) -> APIError:
        return api_error(snapshot.error_code, self.redact(snapshot.error_message), endpoint=path)

    async def submit(self, endpoint: str, body: Mapping[str, Any]) -> TaskSnapshot:
        """POST *body* to ``/openapi/v2/<endpoint>`` once; never retried.

        Raises:
            APIError: RunningHub rejected the submit (the subclass says why).
            TransportError: no usable answer; ``request_sent`` says whether it left.
        """
        path = f"/openapi/v2/{endpoint}"
        _, parsed = await self._exchange("POST", path, json_body=dict(body))
        snapshot = self._snapshot(parsed, path)
        if snapshot.error_code:
            raise self._task_error(snapshot, path)
        if not snapshot.task_id:
            raise ProtocolError(f"{path} accepted the submit but sent no taskId")
        return snapshot

    async def query(self, task_id: str, *, retry: bool = True) -> TaskSnapshot:
        """One ``/openapi/v2/query`` (retried on transient failures when *retry*).

        A task that FAILED is a snapshot, not an exception: the request worked.

        Raises:
            TaskNotFoundError: RunningHub does not know *task_id* (1004).
            APIError: another error code with no task status.
            TransportError: no usable answer.
        """
        path = "/openapi/v2/query"

        async def once() -> TaskSnapshot:
            _, parsed = await self._exchange("POST", path, json_body={"taskId": task_id})
            snapshot = self._snapshot(parsed, path)
            if snapshot.error_code and snapshot.status is TaskStatus.UNKNOWN:
                raise self._task_error(snapshot, path)
            return snapshot

        if not retry:
            return await once()
        result: TaskSnapshot = await self._retrying(once, path)
        return result

    # -- envelope endpoints ({"code", "msg"|"message", "data"}) --------------

    async def envelope(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body_factory: BodyFactory | None = None,
        retry: bool = True,
    ) -> Any:
        """Call an endpoint that answers ``{"code", "msg", "data"}`` and return ``data``.

        *body_factory* builds a fresh request body (a multipart form) per attempt.

        Raises:
            APIError: ``code`` was not a success code (0, or 200 as some hosts send).
            TransportError: no usable answer.
        """

        async def once() -> Any:
            data = body_factory() if body_factory is not None else None
            _, parsed = await self._exchange(method, path, json_body=json_body, data=data)
            if not isinstance(parsed, dict) or "code" not in parsed:
                raise ProtocolError(f"{path} answered without a code envelope")
            code = parsed["code"]
            if str(code) not in ("0", "200"):
                message = parsed.get("msg") or parsed.get("message") or ""
                raise api_error(code, self.redact(str(message)), endpoint=path)
            return parsed.get("data")

        return await (self._retrying(once, path) if retry else once())

    def structure(self, data: Any, cls: type[T], path: str) -> T:
        """*data* as a *cls*, or ProtocolError when it does not fit."""
        try:
            return self._converter.structure(data, cls)
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
            raise ProtocolError(f"{path} answered with an unexpected shape: {exc}") from exc

    async def cancel(self, task_id: str) -> None:
        """Ask RunningHub to cancel *task_id* (legacy endpoint: the key goes in the body)."""
        await self.envelope(
            "POST", "/task/openapi/cancel", json_body={"apiKey": self._key, "taskId": task_id}
        )

    async def account_data(self) -> Any:
        """The ``data`` of ``/uc/openapi/accountStatus`` (it wants the key as ``apikey``)."""
        return await self.envelope(
            "POST", "/uc/openapi/accountStatus", json_body={"apikey": self._key}
        )

    # -- files -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open_file(self, url: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """A streaming GET of a result file, on the session that carries no key.

        Raises:
            APIError: the file host answered with an HTTP error.
            TransportError: no usable answer.
        """
        with map_aiohttp_errors("file download"):
            async with self._files.get(url) as response:
                if response.status >= 400:
                    raise http_error(
                        response.status, response.reason or "", endpoint="file download"
                    )
                yield response
