"""The only module that speaks HTTP (aiohttp).

It owns two sessions: one for the API host, which carries the key, and one for
result files on the CDN, which never does.  Every aiohttp exception becomes one of
ours here.  What an exchange may cost is bounded here too: the whole exchange has
a deadline (``Timeouts.total``), answers are read up to a size cap *after*
decompression (decompressed by us, chunk by chunk, so a gzip bomb stops at the
cap), API calls never follow redirects (a redirected POST could be paid twice),
and downloads have a total bound, a minimum rate and a size bound.  Closing it
ends what is still running on it (exchanges, uploads, downloads) with
`ClientClosedError`, at once.  It knows nothing of RunningHub's routes or
bodies: that is ``_api.py``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Final, TypeVar

import aiohttp
import aiohttp.abc
import aiohttp.payload
import anyio

from ._config import RetryPolicy, Timeouts
from ._errors import (
    APIError,
    ClientClosedError,
    ConnectError,
    ProtocolError,
    RequestTimeoutError,
    TransportError,
    is_transient,
)
from ._file_ops import FileMethods
from ._payloads import Answer, FileStream, FormFile, Inflater, retry_after_seconds
from ._redact import KeyScrubber

__all__ = ["Answer", "CallbackAnswer", "FileStream", "FormFile", "Transport", "callback_endpoint"]

log = logging.getLogger("runninghub_async")
T = TypeVar("T")

USER_AGENT: Final = "runninghub-async"
_CHUNK: Final = 64 * 1024
_JSON_HEADERS: Final = {"Content-Type": "application/json"}
_NO_SCOPE: Final = contextlib.nullcontext()

# What aiohttp raises (its own timeouts are TimeoutErrors); `_ours` maps each to ours.
_AIOHTTP_ERRORS: Final = (aiohttp.ClientError, TimeoutError)


def _ours(exc: BaseException, what: str, redact: Callable[[str], str]) -> TransportError:
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


class _StreamedPart(aiohttp.payload.Payload):
    """A multipart part streamed from a `FormFile`, with its size known up front.

    The size makes the request carry a Content-Length (some servers refuse
    chunked uploads); the content is read chunk by chunk as the socket takes it.
    """

    def __init__(self, form: FormFile) -> None:
        super().__init__(form, filename=form.filename)
        self._form = form

    @property
    def size(self) -> int:
        return self._form.size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a streamed upload cannot be decoded")

    async def write(self, writer: aiohttp.abc.AbstractStreamWriter) -> None:
        async for chunk in self._form.chunks():
            await writer.write(chunk)


def _multipart(form: FormFile) -> aiohttp.MultipartWriter:
    writer = aiohttp.MultipartWriter("form-data")
    for name, value in form.fields.items():
        part = writer.append(value)
        part.set_content_disposition("form-data", name=name)
    payload = _StreamedPart(form)
    payload.set_content_disposition("form-data", name=form.field, filename=form.filename)
    writer.append_payload(payload)
    return writer


class Transport(FileMethods):
    """Bounded HTTP exchanges with the API host, and key-less file downloads."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        pace: Callable[[], Awaitable[None]],
        retry: RetryPolicy,
        timeouts: Timeouts,
        max_connections: int,
        rng: random.Random,
        on_retry: Callable[[str, BaseException, float], None] | None = None,
    ) -> None:
        self._on_retry = on_retry
        self.base_url = base_url
        self._key = api_key
        self._pace = pace
        self._retry = retry
        self._timeouts = timeouts
        self._cap = timeouts.max_response_bytes
        self._rng = rng
        # aiohttp's own total deadline covers connect, send and reading the whole
        # answer (cheaper than a cancel scope per request); files are bounded per download.
        timeout = aiohttp.ClientTimeout(
            total=timeouts.total,
            connect=None,
            sock_connect=timeouts.connect,
            sock_read=timeouts.read,
        )
        # A JSON exchange sends little and gets one small answer, so going `read`
        # seconds without a byte and taking `read` seconds in all are the same bound;
        # as a total it costs one timer instead of one reset per chunk received.
        self._json_timeout = aiohttp.ClientTimeout(
            total=min(timeouts.total, timeouts.read),
            connect=None,
            sock_connect=timeouts.connect,
        )
        self._within: dict[float, aiohttp.ClientTimeout] = {}
        file_timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        headers = {"User-Agent": USER_AGENT}
        self._api = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=timeout,
            headers={**headers, "Accept-Encoding": "gzip, deflate"},
            raise_for_status=False,
            auto_decompress=False,
        )
        # Result URLs live on a CDN: a separate pool with no credentials at all.
        self._files = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            timeout=file_timeout,
            headers=headers,
            raise_for_status=False,
        )
        # Built once: aiohttp copies them into each request's own headers.
        self._bearer_headers = {"Authorization": f"Bearer {api_key}"}
        self._json_headers = {**self._bearer_headers, **_JSON_HEADERS}
        self._scrubber = KeyScrubber(api_key)
        self.requests_sent = 0
        # The cancel scope of every operation running now, each in its caller's
        # task: closing cancels them, so none outlives the client by a deadline.
        self._running: set[anyio.CancelScope] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether `aclose` was called: nothing more is sent."""
        return self._closed

    async def aclose(self) -> None:
        """Close: operations still running end with `ClientClosedError`; then the sessions.

        Idempotent.  The operations are cancelled (in their callers' tasks)
        before the sessions close: aiohttp does not wake a read of a body whose
        connection its closing session drops.
        """
        self._closed = True
        for scope in list(self._running):
            scope.cancel()
        try:
            await self._api.close()
        finally:
            await self._files.close()

    def _closed_error(self, what: str, *, started: bool = True) -> ClientClosedError:
        if started:
            return ClientClosedError(f"the client closed; {what} did not complete")
        return ClientClosedError(f"the client is closed; {what} was not sent")

    @contextlib.contextmanager
    def _operation(
        self, what: str, deadline: float = math.inf, *, begun: bool = False
    ) -> Iterator[None]:
        """A block that closing ends with `ClientClosedError`, the *deadline* with a timeout.

        aiohttp's exceptions become ours.  *begun*: the block continues an
        operation already under way (a download's next chunk).  The block must
        not span a ``yield`` of an async generator (its cancel scope belongs to
        the caller's task).
        """
        if self._closed:
            raise self._closed_error(what, started=begun)
        scope = anyio.CancelScope(deadline=deadline)
        self._running.add(scope)
        try:
            with scope:
                try:
                    yield
                except _AIOHTTP_ERRORS as exc:
                    if self._closed:
                        raise self._closed_error(what) from None
                    raise _ours(exc, what, self.redact) from None
        finally:
            self._running.discard(scope)
        # Only our own cancel is swallowed by the scope (one from outside, or a
        # cancelled enclosing scope, goes on as a cancel): the close or the deadline.
        if scope.cancelled_caught:
            if self._closed:
                raise self._closed_error(what)
            raise RequestTimeoutError(f"{what} did not complete in time")

    def _bounded(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._within.get(seconds)
        if timeout is None:
            limit = min(seconds, self._timeouts.total, self._timeouts.read)
            timeout = aiohttp.ClientTimeout(
                total=limit, connect=None, sock_connect=self._timeouts.connect
            )
            self._within[seconds] = timeout
        return timeout

    def redact(self, text: str) -> str:
        """*text* with the API key blanked out, should a server ever echo it."""
        return self._scrubber.text(text)

    # -- the API host -------------------------------------------------------------

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        form: FormFile | None = None,
        bearer: bool = True,
        within: float | None = None,
        owned: bool = False,
        paced: bool = False,
    ) -> Answer:
        """One request to the API host and its whole answer; never retried, never redirected.

        *body* is sent as JSON.  The request waits for the rate budget first.
        *within* bounds a JSON exchange more tightly than the `Timeouts`.
        *owned*: the caller is a task the client owns and ends before the transport
        closes (a submit's POST, a status check), so the close need not reach it.
        *paced*: the caller took the request's share of the rate budget already.

        Raises:
            TransportError: no usable answer (``request_sent`` says whether it left);
                `ProtocolError` for an answer over the size cap or badly encoded.
            ClientClosedError: the transport closed before or during the exchange.
        """
        if self._closed:
            raise self._closed_error(path, started=False)
        # Inline, not `_operation`: this is every request's path, and one cancel
        # scope is all it needs (aiohttp's own timeout bounds it, not a scope).
        # The client's own tasks need none (the close ends them first): about 3 us
        # less per submit and per status check.
        scope: anyio.CancelScope | None = None
        block: contextlib.AbstractContextManager[Any] = _NO_SCOPE
        if not owned:
            block = scope = anyio.CancelScope()
            self._running.add(scope)
        try:
            with block:
                if not paced:
                    await self._pace()
                self.requests_sent += 1
                data: Any = body
                timeout = self._json_timeout if within is None else self._bounded(within)
                if body is not None:
                    headers = self._json_headers if bearer else _JSON_HEADERS
                else:
                    headers = self._bearer_headers if bearer else {}
                    if form is not None:
                        data, timeout = _multipart(form), self._api.timeout
                try:
                    async with self._api.request(
                        method,
                        self.base_url + path,
                        data=data,
                        headers=headers,
                        allow_redirects=False,
                        timeout=timeout,
                    ) as response:
                        answered, length = response.headers, response.content_length
                        plain = "Content-Encoding" not in answered
                        if plain and length is not None and length <= self._cap:
                            # Declared and within the cap: aiohttp reads exactly that much.
                            content = await response.read()
                        else:
                            content = await self._read_capped(response)
                        reason = response.reason or ""
                        retry_after = answered.get("Retry-After")
                except _AIOHTTP_ERRORS as exc:
                    if self._closed:
                        raise self._closed_error(path) from None
                    raise _ours(exc, path, self.redact) from None
                content = self._scrubber.body(content)
                answer = Answer(
                    response.status,
                    reason if reason == "OK" else self.redact(reason),
                    content,
                    None if retry_after is None else retry_after_seconds(retry_after),
                )
                log.debug("%s %s -> HTTP %s", method, path, answer.status)
                return answer
        finally:
            if scope is not None:
                self._running.discard(scope)
        # Reached only when the scope swallowed its own cancel: the close's.
        raise self._closed_error(path)

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        cap = self._cap
        encoding = response.headers.get("Content-Encoding", "")
        if not encoding and (response.content_length or 0) > cap:
            raise ProtocolError(f"the answer is larger than {cap} bytes")
        inflater = Inflater(encoding, cap)
        async for chunk in response.content.iter_chunked(_CHUNK):
            inflater.feed(chunk)
        return inflater.result()

    async def retrying(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """``await call()``, again on transient failures, with capped jittered backoff.

        The one retry loop of the library; only calls that are safe to repeat come here.
        """
        attempt = 0
        while True:
            try:
                return await call()
            except (TransportError, APIError) as exc:
                attempt += 1
                if attempt >= self._retry.attempts or not is_transient(exc):
                    raise
                delay = self._retry.wait(attempt - 1, self._rng)
                log.info("retrying %s in %.2f s after %s", what, delay, type(exc).__name__)
                if self._on_retry is not None:
                    self._on_retry(what, exc, delay)
                await anyio.sleep(delay)


CallbackAnswer = Callable[
    [str, int | None, Mapping[str, str], Callable[[int], Awaitable[bytes | None]]],
    Awaitable[tuple[int, bytes]],
]


def callback_endpoint(answer: CallbackAnswer) -> Callable[[Any], Awaitable[Any]]:
    """An ``aiohttp.web`` handler around *answer* (the webhook receivers' server side).

    *answer* gets the method, the declared length, the query and a reader of at
    most *n* bytes (None when the body is longer), and returns a status and a
    JSON body.  aiohttp's server half is imported here, on demand: only users
    who mount a receiver load it.
    """
    from aiohttp import web

    async def handler(request: web.Request) -> web.StreamResponse:
        async def read(cap: int) -> bytes | None:
            chunks: list[bytes] = []
            size = 0
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > cap:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            status, body = await answer(
                request.method, request.content_length, request.query, read
            )
        except ConnectionError:
            # The sender hung up mid-body: nobody to answer, and nothing worth an
            # error log (aiohttp logs an escaped exception with its traceback).
            log.debug("webhook: the sender hung up before its body arrived")
            return web.Response(status=400)
        headers = {"Allow": "POST"} if status == 405 else None
        return web.Response(
            status=status, body=body, content_type="application/json", headers=headers
        )

    return handler
