"""``RunningHub``: the session manager that owns the HTTP sessions, limiter and poller."""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import pathlib
import random
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, BinaryIO, Literal, Self

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from . import _catalog, _downloads, _images, _uploads
from ._config import PollPolicy, RetryPolicy, Timeouts
from ._errors import (
    RETRYABLE_SUBMIT_CODES,
    APIError,
    AuthenticationError,
    ClientClosedError,
    ConcurrencyLimitError,
    InvalidParametersError,
    RunningHubError,
    ServerError,
    SubmitOutcomeUnknownError,
    TransportError,
)
from ._images import ImageInput
from ._job import Job
from ._limiter import Limiter, LimiterStatistics, SlotWindow, TokenBucket
from ._models import (
    AccountStatus,
    BatchItem,
    JobResult,
    Output,
    QueueStatus,
    TaskSnapshot,
    TaskStatus,
    UploadedFile,
)
from ._poller import Poller, PollerStatistics, Tracked
from ._transport import Transport
from ._wire import make_converter

__all__ = ["ClientStatistics", "RunningHub"]

log = logging.getLogger("runninghub_async")

DEFAULT_BASE_URL = "https://www.runninghub.ai"


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


@attrs.frozen
class ClientStatistics:
    """A snapshot of a client.

    Attributes:
        outstanding: jobs submitted or attached and not yet ended.
        limiter: the limiter's snapshot (slots, window, local queue, 421s absorbed).
        poller: the poller's snapshot (queries sent, in flight, failures).
        submits_sent: submit requests sent, including rejected ones.
        submits_accepted: submits RunningHub accepted.
        requests_sent: HTTP requests to the API host, of every kind.
    """

    outstanding: int
    limiter: LimiterStatistics
    poller: PollerStatistics
    submits_sent: int
    submits_accepted: int
    requests_sent: int


@attrs.define(eq=False)
class _Post:
    """One submit POST, shared by the task sending it and the caller waiting for it."""

    answered: anyio.Event = attrs.field(factory=anyio.Event)
    tracked: Tracked | None = None
    error: RunningHubError | None = None
    abandoned: bool = False


@attrs.define(eq=False)
class _BatchFeed:
    """What ``run_many``'s producer and consumer share."""

    error: BaseException | None = None


class RunningHub:
    """An asyncio client for RunningHub: submit jobs, and await their results.

    Use it as an async context manager; it does I/O only inside ``async with``::

        async with RunningHub() as client:
            result = await client.run(
                "rhart-image-n-pro/text-to-image", {"prompt": "a red fox", "resolution": "1k"}
            )
            print(result.outputs[0].url)

    One client owns one HTTP session, one limiter and ONE poller that checks
    every outstanding task, however many there are.

    Args:
        api_key: the key; default ``$RUNNINGHUB_API_KEY``.
        base_url: default ``$RUNNINGHUB_BASE_URL``, else ``https://www.runninghub.ai``.
        max_in_flight: jobs outstanding at once on the account (each holds a slot
            from submit until it ends), or ``"auto"`` to read the key's
            ``concurrentLimit`` from ``/openapi/v2/queue/status`` on entry.
            Concurrency rejections (421) are absorbed: the job waits locally and
            the window shrinks, then grows back.
        requests_per_second: a token bucket over every HTTP call (None: no bound).
        job_timeout: seconds from submit after which a job's waits end with
            ``JobTimeoutError``; the client then asks RunningHub to cancel it.
        poll: the shared poller's cadence.
        retry: backoff of calls that are safe to repeat (never submits).
        timeouts: per-request network timeouts.
        max_connections: open connections to the API host at most.
        validate: check params of catalogued endpoints before sending.
        seed: seed of the jitter, for reproducible schedules.

    Raises:
        AuthenticationError: no key was given or found in the environment.
        ValueError: an argument is out of range.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_in_flight: int | Literal["auto"] = 4,
        requests_per_second: float | None = 10.0,
        job_timeout: float = 1800.0,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 32,
        validate: bool = True,
        seed: int | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("RUNNINGHUB_API_KEY", "")
        if not key:
            raise AuthenticationError(
                "local", "no API key: pass api_key= or set RUNNINGHUB_API_KEY"
            )
        if not job_timeout > 0:
            raise ValueError(f"job_timeout must be > 0, got {job_timeout!r}")
        if max_in_flight != "auto" and (not isinstance(max_in_flight, int) or max_in_flight < 1):
            raise ValueError(
                f'max_in_flight must be a positive int or "auto", got {max_in_flight!r}'
            )
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections!r}")
        url = base_url or os.environ.get("RUNNINGHUB_BASE_URL") or DEFAULT_BASE_URL
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {url!r}")
        self._key = key
        self.base_url = url.rstrip("/")
        self._auto_limit = max_in_flight == "auto"
        self.job_timeout = job_timeout
        self._poll_policy = poll or PollPolicy()
        self._retry = retry or RetryPolicy()
        self._timeouts = timeouts or Timeouts()
        self._max_connections = max_connections
        self._validate = validate
        self._rng = random.Random(seed)
        self._converter = make_converter()
        self._limiter = Limiter(
            SlotWindow(1 if max_in_flight == "auto" else max_in_flight),
            TokenBucket(requests_per_second),
        )
        self._state = _State.UNOPENED
        self._transport: Transport | None = None
        self._poller: Poller | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._submits_sent = 0
        self._submits_accepted = 0
        self._uploads = _uploads.UploadCache()

    # -- lifecycle --------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            raise RuntimeError("a RunningHub client can be opened only once; make a new one")
        self._state = _State.OPEN
        transport = Transport(
            base_url=self.base_url,
            api_key=self._key,
            rate=self._limiter.rate,
            converter=self._converter,
            retry=self._retry,
            timeouts=self._timeouts,
            max_connections=self._max_connections,
            rng=self._rng,
        )
        self._transport = transport
        self._poller = Poller(
            lambda task_id: transport.query(task_id, retry=False),
            self._poll_policy,
            job_timeout=self.job_timeout,
            remote_cancel=transport.cancel,
            rng=self._rng,
        )
        tg = anyio.create_task_group()
        try:
            await tg.__aenter__()
            self._tg = tg
            try:
                await tg.start(self._poller.run)
                if self._auto_limit:
                    status = await self.queue_status()
                    self._limiter.slots.set_limit(max(1, status.concurrent_limit))
            except BaseException as exc:
                tg.cancel_scope.cancel()
                await tg.__aexit__(type(exc), exc, exc.__traceback__)
                raise
        except BaseException:
            self._state = _State.CLOSED
            await transport.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._state = _State.CLOSED
        assert self._tg is not None
        assert self._poller is not None
        assert self._transport is not None
        self._poller.close()
        self._tg.cancel_scope.cancel()
        try:
            if exc is None or isinstance(exc, anyio.get_cancelled_exc_class()):
                return await self._tg.__aexit__(exc_type, exc, tb)
            # The caller's own exception: close the group as if the body had ended, so
            # the exception reaches the caller as itself, not inside an ExceptionGroup.
            await self._tg.__aexit__(None, None, None)
            return None
        finally:
            with anyio.CancelScope(shield=True):
                await self._transport.aclose()

    def _open(self) -> tuple[Transport, Poller, anyio.abc.TaskGroup]:
        if self._state is not _State.OPEN:
            verb = (
                "not open yet: use `async with RunningHub(...)`"
                if (self._state is _State.UNOPENED)
                else "closed"
            )
            raise ClientClosedError(f"the client is {verb}")
        assert self._transport is not None
        assert self._poller is not None
        assert self._tg is not None
        return self._transport, self._poller, self._tg

    # -- jobs ---------------------------------------------------------------------

    async def submit(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        *,
        webhook_url: str | None = None,
    ) -> Job:
        """Submit one job and return its handle as soon as RunningHub accepts it.

        Waits first for a free slot (``max_in_flight``).  Concurrency and rate
        rejections (421, 415, 1520, 1003, 1011, HTTP 429) and failures to connect
        are not errors: the job waits and is sent again.  Anything that may have
        reached RunningHub is never sent twice.  If this call is cancelled while
        the submit is on the wire, the client still learns the task id and keeps
        following the job.

        Args:
            endpoint: a path below ``/openapi/v2/`` (``"rhart-image-n-pro/text-to-image"``)
                or a documented name (``"nano-banana-pro/text-to-image-channel-low-price"``).
            params: the request body, with RunningHub's camelCase names.
            webhook_url: a URL RunningHub calls when the task ends.

        Raises:
            InvalidParametersError: the params break a catalogued endpoint's schema
                (nothing was sent), or RunningHub rejected them.
            SubmitOutcomeUnknownError: the submit was sent but no answer came back.
            AuthenticationError, InsufficientBalanceError, APIError: RunningHub refused.
            ClientClosedError: the client is not open.
        """
        transport, poller, tg = self._open()
        path = _catalog.resolve_endpoint(endpoint)
        body = self._checked_body(path, params)
        if webhook_url is not None:
            body["webhookUrl"] = webhook_url
        tracked = await self._submit_until_answered(transport, poller, tg, path, body)
        return Job(tracked, poller, params=params, cancel=self._cancel)

    def _checked_body(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(params, Mapping):
            raise InvalidParametersError(
                "local", f"params must be a mapping, got {type(params).__name__}", endpoint=path
            )
        body = dict(params)
        spec = _catalog.lookup(path) if self._validate else None
        if spec is not None:
            problems = _catalog.violations(spec, body)
            if problems:
                first = problems[0]
                raise InvalidParametersError(
                    "local",
                    "; ".join(str(p) for p in problems),
                    endpoint=path,
                    field=first.field,
                    value=first.value,
                    allowed=first.allowed,
                )
        return body

    async def _submit_until_answered(
        self,
        transport: Transport,
        poller: Poller,
        tg: anyio.abc.TaskGroup,
        path: str,
        body: Mapping[str, Any],
    ) -> Tracked:
        """Send the submit until RunningHub accepts or refuses it; the job then holds its slot."""
        slots = self._limiter.slots
        start = anyio.current_time()
        attempt = 0
        while True:
            await slots.acquire(front=attempt > 0)
            self._submits_sent += 1
            # The POST runs in a task the client owns, so that a caller cancelled
            # (by anyio or by a bare task.cancel()) while it is on the wire cannot lose
            # the answer: an accepted task costs money and is followed regardless.
            post = _Post()
            tg.start_soon(self._post, transport, poller, path, body, post)
            try:
                await post.answered.wait()
            except BaseException:
                post.abandoned = True
                raise
            if post.tracked is not None:
                return post.tracked
            assert post.error is not None
            if not self._retry_submit(post.error, path, body, start, attempt):
                raise post.error
            if isinstance(post.error, ConcurrencyLimitError):
                slots.rejected()
            self._limiter.rejections_absorbed += 1
            attempt += 1
            if not (isinstance(post.error, ConcurrencyLimitError) and slots.in_use > 0):
                # With our own jobs running, their end is the signal to retry;
                # otherwise (a rate limit, or the account busy elsewhere) back off.
                await anyio.sleep(self._retry.wait(min(attempt - 1, 6), self._rng))

    async def _post(
        self, transport: Transport, poller: Poller, path: str, body: Mapping[str, Any], post: _Post
    ) -> None:
        """One submit POST; on acceptance the client follows the task, whoever still waits."""
        slots = self._limiter.slots
        try:
            snapshot = await transport.submit(path, body)
        except BaseException as exc:
            slots.release()
            if isinstance(exc, RunningHubError):
                post.error = exc
            else:  # cancelled: the client is closing with this submit on the wire
                post.error = SubmitOutcomeUnknownError(path, body, ClientClosedError("closing"))
                raise
        else:
            self._submits_accepted += 1
            slots.accepted()
            post.tracked = poller.track(
                snapshot.task_id, endpoint=path, on_done=slots.release, submitted=True
            )
            if snapshot.status.is_terminal:
                poller.resolve(snapshot)
            log.debug("submitted %s to %s", snapshot.task_id, path)
        finally:
            if post.abandoned and post.tracked is not None:
                log.warning(
                    "the caller of a submit to %s was cancelled after RunningHub accepted it; "
                    "the client follows task %s until it ends",
                    path,
                    post.tracked.task_id,
                )
            post.answered.set()

    def _retry_submit(
        self, exc: BaseException, path: str, body: Mapping[str, Any], start: float, attempt: int
    ) -> bool:
        """Whether *exc* proves the submit was not accepted, so it may go again.

        Raises:
            SubmitOutcomeUnknownError: the submit may have been accepted.
        """
        in_time = anyio.current_time() - start < self.job_timeout
        if isinstance(exc, APIError):
            if exc.code in RETRYABLE_SUBMIT_CODES or exc.http_status == 429:
                log.debug("submit to %s rejected with %s; will resend", path, exc.code)
                return in_time
            if isinstance(exc, ServerError) and (exc.http_status or 0) >= 500:
                raise SubmitOutcomeUnknownError(path, body, exc) from exc
            return False
        if isinstance(exc, TransportError):
            if exc.request_sent:
                raise SubmitOutcomeUnknownError(path, body, exc) from exc
            return in_time and attempt + 1 < self._retry.attempts
        return False

    async def run(
        self, endpoint: str, params: Mapping[str, Any], *, webhook_url: str | None = None
    ) -> JobResult:
        """Submit a job and wait for its result (``submit`` then ``Job.wait``).

        Raises:
            Everything ``submit`` and ``Job.wait`` raise.
        """
        job = await self.submit(endpoint, params, webhook_url=webhook_url)
        return await job.wait()

    def attach(self, task_id: str, *, endpoint: str | None = None) -> Job:
        """Follow a task submitted earlier (by this or another client or process).

        The job is checked at once and then like any other; its ``job_timeout``
        runs from now.  A task already followed returns a handle to the same job.

        Raises:
            ValueError: *task_id* is not a RunningHub task id.
            ClientClosedError: the client is not open.
        """
        _, poller, _ = self._open()
        task_id = str(task_id).strip()
        if not task_id.isdigit():
            raise ValueError(f"not a RunningHub task id: {task_id!r}")
        tracked = poller.track(task_id, endpoint=endpoint)
        return Job(tracked, poller, params=None, cancel=self._cancel)

    async def query(self, task_id: str) -> TaskSnapshot:
        """One ``/openapi/v2/query`` of *task_id*, without waiting for it to end.

        Raises:
            TaskNotFoundError: RunningHub does not know the task (or it expired).
            APIError, TransportError: the query failed.
        """
        transport, _, _ = self._open()
        return await transport.query(str(task_id))

    def handle_webhook(self, payload: Mapping[str, Any] | str | bytes) -> bool:
        """Take a RunningHub ``TASK_END`` callback as the signal to check that task now.

        Pass the JSON body your webhook endpoint received.  RunningHub does not sign
        callbacks, so the payload is only a hint: one query confirms the outcome
        before any waiter sees it, and a forged callback cannot inject a result.

        Returns:
            True when the task is one this client follows.

        Raises:
            ValueError: *payload* is not a TASK_END callback.
        """
        _, poller, _ = self._open()
        if isinstance(payload, str | bytes):
            try:
                payload = json.loads(payload)
            except ValueError as exc:
                raise ValueError("webhook payload is not JSON") from exc
        if not isinstance(payload, Mapping) or payload.get("event") != "TASK_END":
            raise ValueError("not a RunningHub TASK_END callback")
        task_id = str(payload.get("taskId") or "")
        if not task_id.isdigit():
            raise ValueError(f"webhook payload has no valid taskId: {task_id!r}")
        return poller.poke(task_id)

    async def _cancel(self, tracked: Tracked) -> bool:
        transport, poller, _ = self._open()
        if tracked.outcome is not None:
            return False
        try:
            await transport.cancel(tracked.task_id)
        except AuthenticationError:
            raise
        except APIError:
            # Refused: most likely the task ended first.  Learn how, and settle the job.
            if poller.resolve(await transport.query(tracked.task_id)):
                return False
            raise
        snapshot = await transport.query(tracked.task_id)
        if snapshot.status.is_terminal and snapshot.status is not TaskStatus.CANCEL:
            poller.resolve(snapshot)  # it ended before the cancel took effect
            return False
        # Accepted: the task is cancelled even if the query lags behind.
        poller.resolve(attrs.evolve(snapshot, status=TaskStatus.CANCEL))
        return True

    # -- batches --------------------------------------------------------------------

    async def run_many(
        self,
        endpoint: str,
        params: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        window: int | None = None,
    ) -> AsyncGenerator[BatchItem, None]:
        """Run one job per params, yielding each as it ends, in completion order.

        *params* is pulled lazily: at most *window* items (default: the client's
        ``max_in_flight``) are taken from it and not yet handed back, so an
        iterator of a million params costs the memory of a window.  One failing
        item never stops the batch: it comes back with ``error`` set.  Breaking
        out of the loop stops the batch (``aclose()`` it, or use
        ``contextlib.aclosing``, to stop it at once rather than when collected).

        Raises:
            ClientClosedError: the client is not open.
            Exception: whatever iterating *params* raised, after the items
                already running have been handed back.
        """
        _, _, tg = self._open()
        size = window if window is not None else self._limiter.slots.limit
        if size < 1:
            raise ValueError(f"window must be >= 1, got {size!r}")
        send, receive = anyio.create_memory_object_stream[BatchItem]()
        feed = _BatchFeed()
        scope = anyio.CancelScope()
        tg.start_soon(self._feed_batch, endpoint, params, size, send, feed, scope)
        try:
            async with receive:
                async for item in receive:
                    yield item
        finally:
            scope.cancel()
        if feed.error is not None:
            raise feed.error

    async def _feed_batch(
        self,
        endpoint: str,
        params: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        size: int,
        send: anyio.abc.ObjectSendStream[BatchItem],
        feed: _BatchFeed,
        scope: anyio.CancelScope,
    ) -> None:
        with scope:
            async with send, anyio.create_task_group() as tg:
                window = anyio.Semaphore(size)
                try:
                    index = 0
                    async for item in _aiter(params):
                        await window.acquire()
                        tg.start_soon(self._batch_item, endpoint, index, item, send, window)
                        index += 1
                except Exception as exc:  # the caller's iterator failed: hand it back
                    feed.error = exc

    async def _batch_item(
        self,
        endpoint: str,
        index: int,
        params: Mapping[str, Any],
        send: anyio.abc.ObjectSendStream[BatchItem],
        window: anyio.Semaphore,
    ) -> None:
        task_id: str | None = None
        try:
            try:
                job = await self.submit(endpoint, params)
                task_id = job.task_id
                item = BatchItem(index, params, result=await job.wait(), task_id=task_id)
            except (RunningHubError, ValueError, TypeError) as exc:
                item = BatchItem(index, params, error=exc, task_id=task_id)
            # If the consumer stopped iterating, nobody wants the item.
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(item)
        finally:
            window.release()

    # -- images and files ---------------------------------------------------------------

    async def upload(
        self,
        source: os.PathLike[str] | bytes | BinaryIO,
        *,
        filename: str | None = None,
        max_bytes: int = _uploads.MAX_UPLOAD_BYTES,
    ) -> UploadedFile:
        """Upload a local file through ``/openapi/v2/media/upload/binary``.

        The file is streamed, not read into memory, and its size is checked
        before anything is sent.  The same content is uploaded once per client
        (also when several calls ask at once): later calls get the same
        `UploadedFile`, whose ``download_url`` stays valid about a day.

        Args:
            source: a path (``pathlib.Path``), the bytes, or a binary file object
                (read from its current position).  A ``str`` is refused: it is
                too easily a URL taken for a path.
            filename: the name to send; default the file's own name, else one
                derived from the content's type.
            max_bytes: the largest file to send (default 30 MB).

        Returns:
            The upload: ``download_url`` for image params, ``file_name`` for
            workflow nodes, ``size`` in bytes.

        Raises:
            FileTooLargeError: the file is over *max_bytes* (nothing sent), or
                RunningHub found it too large.
            InvalidParametersError: the file is empty, or RunningHub refused it.
            TypeError: *source* is not a path, bytes or a binary file object.
            OSError: the file cannot be read.
            APIError, TransportError: the upload failed (after retries).
            ClientClosedError: the client is not open.
        """
        transport, _, _ = self._open()
        local = await _uploads.inspect_local(source, filename=filename, read_limit=max_bytes)
        return await _uploads.upload_local(transport, self._uploads, local, max_bytes=max_bytes)

    async def submit_text_to_image(
        self,
        prompt: str,
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        webhook_url: str | None = None,
    ) -> Job:
        """Submit a nano-banana text-to-image job and return its handle.

        Args:
            prompt: what to draw.
            model: one of ``"nano-banana-pro"`` (low-price channel),
                ``"nano-banana-pro-official"``, ``"nano-banana-pro-ultra"``,
                ``"nano-banana2"``, ``"nano-banana2-official"``, ``"nano-banana"``,
                ``"nano-banana-official"``, ``"nano-banana2-lite"``,
                ``"nano-banana2-lite-official"``.
            aspect_ratio: e.g. ``"16:9"``; None for the model's default.
            resolution: ``"1k"``, ``"2k"``, ``"4k"`` (ultra: ``"4k"``, ``"8k"``);
                None for the default (1k; ultra 8k).  nano-banana v1 and lite
                have no resolution.
            webhook_url: a URL RunningHub calls when the task ends.

        Raises:
            ValueError: unknown *model* (the message lists the models).
            InvalidParametersError: a value the model does not allow; ``field``,
                ``value`` and ``allowed`` say which.  Nothing was sent.
            Everything ``submit`` raises.
        """
        self._open()
        path, body = _images.image_params(
            "text-to-image",
            prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            validate=self._validate,
        )
        return await self.submit(path, body, webhook_url=webhook_url)

    async def text_to_image(
        self,
        prompt: str,
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> JobResult:
        """Generate an image from *prompt* and wait for it (``submit_text_to_image`` + ``wait``).

        Raises:
            Everything ``submit_text_to_image`` and ``Job.wait`` raise.
        """
        job = await self.submit_text_to_image(
            prompt, model=model, aspect_ratio=aspect_ratio, resolution=resolution
        )
        return await job.wait()

    async def submit_edit_image(
        self,
        prompt: str,
        images: Sequence[ImageInput],
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        webhook_url: str | None = None,
    ) -> Job:
        """Submit a nano-banana edit (image-to-image) job and return its handle.

        Every argument is checked first, local files' sizes included; only then
        are local files uploaded (once per distinct content) and replaced by
        their URLs, and the job submitted.

        Args:
            prompt: what to do with the images.
            images: http(s) URLs and ``data:`` URIs (sent as they are), and local
                files as ``pathlib.Path``, bytes or binary file objects.
            model: as for ``submit_text_to_image``.
            aspect_ratio: e.g. ``"16:9"``; None for the model's default (for most
                models, the input image's shape).
            resolution: as for ``submit_text_to_image``.
            webhook_url: a URL RunningHub calls when the task ends.

        Raises:
            ValueError: unknown *model* (the message lists the models).
            InvalidParametersError: a value the model does not allow, too many
                images, or a str image that is not a URL; nothing was uploaded.
            FileTooLargeError: an image is over the model's per-image limit
                (``field`` ``imageUrls[i]``); nothing was uploaded.
            TypeError: *images* is not a list of images.
            OSError: a local file cannot be read.
            Everything ``upload`` and ``submit`` raise.
        """
        transport, _, _ = self._open()
        path = _images.endpoint_for("edit", model)
        inputs = _images.check_images(images, path)

        def params(
            urls: Sequence[str], sizes: Mapping[str, int] | None = None
        ) -> tuple[str, dict[str, Any]]:
            return _images.image_params(
                "edit",
                prompt,
                model=model,
                aspect_ratio=aspect_ratio,
                resolution=resolution,
                image_urls=urls,
                image_sizes=sizes,
                validate=self._validate,
            )

        # Cheap checks before any file is touched, then sizes before any upload.
        params([_images.image_label(image) for image in inputs])
        sources = await _uploads.inspect_images(inputs)
        labels = [s if isinstance(s, str) else s.label for s in sources]
        params(labels, _uploads.known_sizes(sources))
        urls = await _uploads.upload_images(transport, self._uploads, sources)
        path, body = params(urls)
        return await self.submit(path, body, webhook_url=webhook_url)

    async def edit_image(
        self,
        prompt: str,
        images: Sequence[ImageInput],
        *,
        model: str = _catalog.DEFAULT_MODEL,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> JobResult:
        """Edit *images* as *prompt* says and wait for the result.

        ``submit_edit_image`` then ``Job.wait``.

        Raises:
            Everything ``submit_edit_image`` and ``Job.wait`` raise.
        """
        job = await self.submit_edit_image(
            prompt, images, model=model, aspect_ratio=aspect_ratio, resolution=resolution
        )
        return await job.wait()

    async def download(
        self,
        source: JobResult | Output | Iterable[JobResult | Output],
        dest_dir: str | os.PathLike[str],
        *,
        concurrency: int = 4,
    ) -> list[pathlib.Path]:
        """Download result files into *dest_dir* (created if missing).

        Each file is streamed to ``<name>.part`` and renamed when complete.
        Outputs of a `JobResult` are named ``<task_id>_<n>.<ext>``; a bare
        `Output` after the last segment of its URL, sanitised (never a path
        outside *dest_dir*).  An existing file is never replaced: the new one
        gets ``-1``, ``-2``, ... before its extension.  Downloads go through a
        separate HTTP session that never carries the API key, *concurrency* at a
        time, and do not hold job slots.

        Args:
            source: a result, an output, or an iterable of them; outputs without
                a URL (text outputs) are skipped.
            dest_dir: the directory to write to.
            concurrency: downloads at once.

        Returns:
            One path per output with a URL, in order.

        Raises:
            APIError: the file host answered with an HTTP error (an expired URL).
            TransportError: the connection failed or broke mid-file.  The other
                downloads are cancelled, and no partial file is left behind
                (files already complete stay).
            OSError: *dest_dir* cannot be written.
            TypeError, ValueError: *source* holds something else, or a URL is not http(s).
            ClientClosedError: the client is not open.
        """
        transport, _, _ = self._open()
        plan = _downloads.plan_downloads(source)
        return await _downloads.download_outputs(transport, plan, dest_dir, concurrency=concurrency)

    # -- account ----------------------------------------------------------------------

    async def queue_status(self) -> QueueStatus:
        """The key's concurrency limit and current load (``/openapi/v2/queue/status``)."""
        transport, _, _ = self._open()
        path = "/openapi/v2/queue/status"
        data = await transport.envelope("GET", path)
        return transport.structure(data, QueueStatus, path)

    async def account(self) -> AccountStatus:
        """The account behind the key: balance, coins, running tasks, key type."""
        transport, _, _ = self._open()
        data = await transport.account_data()
        return transport.structure(data, AccountStatus, "/uc/openapi/accountStatus")

    # -- introspection ------------------------------------------------------------------

    def statistics(self) -> ClientStatistics:
        """A snapshot of the client: outstanding jobs, slots, local queue, queries sent."""
        poller = self._poller.statistics() if self._poller else PollerStatistics(0, 0, 0, 0, 0, 0)
        return ClientStatistics(
            outstanding=poller.outstanding,
            limiter=self._limiter.statistics(),
            poller=poller,
            submits_sent=self._submits_sent,
            submits_accepted=self._submits_accepted,
            requests_sent=self._transport.requests_sent if self._transport else 0,
        )

    def __repr__(self) -> str:
        s = self._limiter.statistics()
        outstanding = self._poller.statistics().outstanding if self._poller else 0
        return (
            f"<RunningHub {self.base_url} {self._state.value} outstanding={outstanding} "
            f"in_flight={s.in_flight}/{s.window}>"
        )


async def _aiter(
    items: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
) -> AsyncIterator[Mapping[str, Any]]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
            await anyio.lowlevel.checkpoint()
