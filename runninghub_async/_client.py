"""``RunningHub``: the facade.  It builds the collaborators once and owns their lifecycle.

A task id's way, top-down, each module entered once::

    RunningHub.submit ─► Submitter.submit ─► Api.submit ─► Transport.exchange
                                  └──► Poller.track ─► Tracked (the job's future) ◄─ Job.wait
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from decimal import Decimal
from typing import Any, Literal

import anyio
import anyio.abc
import attrs

from . import _catalog, _uploads
from ._api import Api
from ._batches import BatchMethods
from ._catalog import Catalog
from ._config import (
    DEFAULT_JOB_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_REQUESTS_PER_SECOND,
    ClientConfig,
    PollPolicy,
    RetryPolicy,
    Timeouts,
    build_config,
)
from ._errors import (
    ClientClosedError,
    RunningHubError,
)
from ._extras import ApiExtras
from ._follow import TaskMethods
from ._helpers import FileMethods, ImageHelpers
from ._hooks import Hooks, safely
from ._job import Job
from ._journal import Journal
from ._limiter import Limiter, LimiterStatistics, LocalLimiter
from ._live import Live, opened
from ._models import (
    JobResult,
)
from ._poller import PollerStatistics, Tracked
from ._prepare import Preparer, Request, check_webhook_url
from ._specs import ParamSpec

__all__ = ["ClientStatistics", "RunningHub"]

log = logging.getLogger("runninghub_async")

_MAX_READ_BYTES = 512 * 1024 * 1024


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
        orphaned: task ids accepted after their submitter was cancelled (followed anyway).
        cost: what the jobs that succeeded cost, by RunningHub's ``usage`` (money).
        submits_unknown: submits sent that got no answer (`SubmitOutcomeUnknownError`,
            or a warning when their caller had left): each may have created a task.
    """

    outstanding: int
    limiter: LimiterStatistics
    poller: PollerStatistics
    submits_sent: int
    submits_accepted: int
    requests_sent: int
    orphaned: tuple[str, ...] = ()
    cost: Decimal = Decimal(0)
    submits_unknown: int = 0


class RunningHub(
    TaskMethods,
    BatchMethods,
    ImageHelpers,
    FileMethods,
    ApiExtras,
    anyio.AsyncContextManagerMixin,
):
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
        requests_per_second: a budget over every HTTP call (None: no bound).  A
            rate rejection (1003, HTTP 429) halves it and it recovers gradually.
        job_timeout: seconds from submit after which a job's waits end with
            ``JobTimeoutError``; the client then asks RunningHub to cancel it.
        poll: the shared poller's cadence.
        retry: backoff of calls that are safe to repeat (never submits).
        timeouts: network bounds (connect, read, whole exchange, answer size, downloads).
        max_connections: open connections to the API host at most.
        validate: check every submit against the model catalog before sending
            (unknown models and parameter names included); False sends anything.
        seed: seed of the jitter, for reproducible schedules.
        webhook_url: an https URL of yours that RunningHub calls when a task ends
            (mount ``runninghub_async.webhooks``); each submit gets it with a
            per-task secret token, and the callback resolves the job at once.
        limiter: a shared limiter (``runninghub_async.redis.RedisLimiter``) instead
            of the in-process one built from *max_in_flight* and *requests_per_second*.
        catalog: the model catalog to validate against: a registry JSON file (a
            newer one than this release's), a `runninghub_async.catalog.Catalog`,
            or None for the packaged one.
        journal: where every submit's intent, task id and end are recorded
            (`FileJournal`, ``runninghub_async.redis.RedisJournal``), so that after
            a crash ``recover()`` re-attaches every paid task.  Entered and left
            with the client.
        hooks: a `Hooks` instance told of every submit, slot wait, acceptance,
            rejection, retry, throttle, status change and end (e.g.
            ``runninghub_async.otel.OpenTelemetryHooks``).

    Raises:
        AuthenticationError: no key was given or found in the environment.
        TypeError, ValueError: an argument has the wrong type or value.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_in_flight: int | Literal["auto"] = DEFAULT_MAX_IN_FLIGHT,
        requests_per_second: float | None = DEFAULT_REQUESTS_PER_SECOND,
        job_timeout: float = DEFAULT_JOB_TIMEOUT,
        poll: PollPolicy | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        validate: bool = True,
        seed: int | None = None,
        webhook_url: str | None = None,
        limiter: Limiter | None = None,
        catalog: str | os.PathLike[str] | Catalog | None = None,
        journal: Journal | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self._config: ClientConfig = build_config(
            api_key=api_key,
            base_url=base_url,
            max_in_flight=max_in_flight,
            requests_per_second=requests_per_second,
            job_timeout=job_timeout,
            poll=poll,
            retry=retry,
            timeouts=timeouts,
            max_connections=max_connections,
            validate=validate,
            seed=seed,
            webhook_url=webhook_url,
        )
        self.base_url = self._config.base_url
        self.job_timeout = self._config.job_timeout
        self._limiter: Limiter = limiter or LocalLimiter(
            self._config.max_in_flight, self._config.requests_per_second
        )
        if catalog is None:
            models = _catalog.default_catalog()
        elif isinstance(catalog, Catalog):
            models = catalog
        else:
            models = Catalog.from_path(catalog)
        self._prepare = Preparer(
            models, validate=self._config.validate, webhook_url=self._config.webhook_url
        )
        self._journal = journal
        self._hooks = hooks
        self._cost = Decimal(0)
        self._rng = random.Random(seed)
        self._state = _State.UNOPENED
        self._live: Live | None = None
        self._upload_cache = _uploads.UploadCache()
        # Callers beyond the connections' capacity wait before any work (10,000
        # submits at once then cost a queue, not 10,000 requests built in one go).
        # Slots bound them already when there are no more slots than connections.
        config = self._config
        self._admission: asyncio.Semaphore | None = (
            asyncio.Semaphore(config.max_connections)
            if limiter is not None
            or config.auto_limit
            or config.max_in_flight > config.max_connections
            else None
        )

    # -- lifecycle ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncIterator[RunningHub]:
        if self._state is not _State.UNOPENED:
            raise RuntimeError("a RunningHub client can be opened only once; make a new one")
        self._state = _State.OPEN
        try:
            async with opened(
                self._config,
                self._limiter,
                journal=self._journal,
                hooks=self._hooks,
                rng=self._rng,
                on_finished=self._finished,
            ) as live:
                self._live = live
                try:
                    yield self
                finally:
                    # Closed before the collaborators close: a submit racing the
                    # close is refused, not sent into a draining submitter.
                    self._state = _State.CLOSED
        finally:
            self._state = _State.CLOSED

    def _finished(self, tracked: Tracked, outcome: JobResult | RunningHubError) -> None:
        if isinstance(outcome, JobResult) and outcome.usage is not None:
            self._cost += outcome.usage.consume_money or 0
        if self._hooks is not None:
            seconds = anyio.current_time() - tracked.submitted_at
            safely(self._hooks, "finished", tracked.task_id, tracked.endpoint, outcome, seconds)

    def _open(self) -> Live:
        if self._state is not _State.OPEN or self._live is None:
            verb = "not open yet: use `async with RunningHub(...)`" if (
                self._state is _State.UNOPENED
            ) else "closed"
            raise ClientClosedError(f"the client is {verb}")
        return self._live

    @property
    def _api(self) -> Api:
        return self._open().api

    # -- jobs ------------------------------------------------------------------------

    async def submit(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        *,
        webhook_url: str | None = None,
        key: str | None = None,
    ) -> Job:
        """Submit one job and return its handle as soon as RunningHub accepts it.

        Everything is checked and encoded first, in the caller's task: a bad
        argument raises here and nothing is sent.  Then it waits for a free slot
        (``max_in_flight``).  Concurrency and rate rejections (421, 415, 1520,
        1003, 1011, HTTP 429) and failures to connect are not errors: the job
        waits and is sent again.  Anything that may have reached RunningHub is
        never sent twice.  If this call is cancelled while the submit is on the
        wire, the client still learns the task id and keeps following the job.

        Args:
            endpoint: a path below ``/openapi/v2/`` (``"rhart-image-n-pro/text-to-image"``)
                or a documented name (``"nano-banana-pro/text-to-image-channel-low-price"``).
            params: the request body, with RunningHub's camelCase names.
            webhook_url: an http(s) URL RunningHub calls when the task ends
                (overriding the client's ``webhook_url``; no per-task token).
            key: the journal key of this submit (default: a fresh one), when the
                client has a ``journal``.

        Raises:
            InvalidParametersError: the endpoint, params or *webhook_url* are not
                valid (nothing was sent or uploaded; ``field`` names the culprit),
                or RunningHub rejected them.
            TypeError: *params* is not a mapping, *endpoint* or *webhook_url* not
                a str, or *key* not a non-empty str.
            SubmitOutcomeUnknownError: the submit was sent but no answer came back.
            AuthenticationError, InsufficientBalanceError, APIError: RunningHub refused.
            ClientClosedError: the client is not open, or closed before sending.
        """
        live = self._open()
        if webhook_url is not None:
            webhook_url = check_webhook_url(webhook_url)
        if key is not None and (not isinstance(key, str) or not key):
            raise TypeError(f"key must be a non-empty str, got {key!r}")
        gate = self._admission  # None when the slots already bound the submits
        if gate is not None:
            await gate.acquire()
        try:
            prep = self._prepare
            path, spec = prep.check(endpoint, params)
            body = (
                await prep.localise(spec, params, self._upload_media)
                if prep.has_local_media(spec, params)
                else dict(params)
            )
            request = prep.finish(path, body, params, webhook_url)
            tracked = await self._send(live, request, self._journal, key)
        finally:
            if gate is not None:
                gate.release()
        return Job(tracked, live.poller, live.api, params=request.params)

    def _send(
        self, live: Live, request: Request, journal: Journal | None, key: str | None
    ) -> Awaitable[Tracked]:
        """Send *request* (await it for the tracked task): no coroutine of its own."""
        if journal is not None and key is None:
            key = uuid.uuid4().hex
        return live.submitter.submit(
            request.path,
            request.body,
            request.params,
            webhook_token=request.webhook_token,
            journal=journal,
            key=key,
        )

    async def _upload_media(self, local: _uploads.LocalFile, field: str, param: ParamSpec) -> str:
        limit = param.max_bytes or _uploads.MAX_UPLOAD_BYTES
        api = self._open().api
        uploaded = await _uploads.upload_local(
            api, self._upload_cache, local, max_bytes=limit, field=field
        )
        return uploaded.download_url

    async def run(
        self, endpoint: str, params: Mapping[str, Any], *, webhook_url: str | None = None
    ) -> JobResult:
        """Submit a job and wait for its result (``submit`` then ``Job.wait``).

        Raises:
            Everything ``submit`` and ``Job.wait`` raise.
        """
        job = await self.submit(endpoint, params, webhook_url=webhook_url)
        return await job.wait()

    # -- introspection -----------------------------------------------------------------

    def statistics(self) -> ClientStatistics:
        """A snapshot of the client: outstanding jobs, slots, local queue, queries sent."""
        live = self._live
        poller = live.poller.statistics() if live else PollerStatistics(0, 0, 0, 0, 0, 0)
        return ClientStatistics(
            outstanding=poller.outstanding,
            limiter=self._limiter.statistics(),
            poller=poller,
            submits_sent=live.submitter.sent if live else 0,
            submits_accepted=live.submitter.accepted if live else 0,
            requests_sent=live.transport.requests_sent if live else 0,
            orphaned=tuple(live.submitter.orphaned) if live else (),
            cost=self._cost,
            submits_unknown=live.submitter.unknown if live else 0,
        )

    def __repr__(self) -> str:
        s = self._limiter.statistics()
        outstanding = self._live.poller.statistics().outstanding if self._live else 0
        return (
            f"<RunningHub {self.base_url} {self._state.value} outstanding={outstanding} "
            f"in_flight={s.in_flight}/{s.window}>"
        )
