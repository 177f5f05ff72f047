"""A blocking ``RunningHub`` for scripts, notebooks and threads.

It is the asyncio client, run on an event loop of its own in a background
thread (an anyio blocking portal), so it works where ``asyncio.run`` cannot:
inside Jupyter, whose main thread already runs a loop, and from several
threads at once::

    from runninghub_async.sync import RunningHub

    with RunningHub() as client:
        result = client.run(
            "rhart-image-n-pro/text-to-image", {"prompt": "a red fox", "resolution": "1k"}
        )
        print(result.outputs[0].url)

Every method blocks the calling thread until the async one it wraps is done,
and raises the very exceptions the async one raises.  In async code, use
``runninghub_async.RunningHub`` itself: a blocking call there stalls your loop.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Generator, Iterable, Mapping
from decimal import Decimal
from typing import Any

import anyio

from ._client import ClientStatistics
from ._client import RunningHub as AsyncRunningHub
from ._errors import ClientClosedError
from ._job import Job as AsyncJob
from ._journal import Journal
from ._models import (
    AccountStatus,
    BatchItem,
    JobResult,
    QueueStatus,
    TaskSnapshot,
    TaskStatus,
)
from ._sync_extras import SyncExtras, SyncFiles
from ._sync_portal import PortalClient, State

__all__ = ["Job", "RunningHub"]


class RunningHub(PortalClient, SyncExtras, SyncFiles):
    """The blocking ``runninghub_async.RunningHub``: same methods, same errors, same limits.

    Construct it with exactly the keyword arguments of the async client (they are
    checked at once).  Constructing starts nothing; ``with`` starts it, and so does
    the first call if there was no ``with`` (handy in a notebook).  Starting opens
    the async client on an event loop in a thread of its own; ``close()`` (or
    leaving ``with``) closes the client and ends that thread.  A client is opened
    once: after ``close()`` every call raises ``ClientClosedError``.

    Any number of threads may use one client at once: their calls all run on the
    client's one loop, sharing its limiter and its one poller.  Calling it from a
    thread that runs an event loop (a notebook cell, a coroutine) works but blocks
    that loop until the call returns; in async code use the async client.

    Ctrl-C during a call cancels that call in the client's loop (a submit already
    on the wire is still followed, as in the async client) and re-raises
    ``KeyboardInterrupt``; the client stays usable.

    Raises:
        AuthenticationError: no key was given or found in the environment.
        ValueError, TypeError: an argument is out of range or unknown.
    """

    # ``with``, ``close()`` and the calls across to the loop thread (``_call``,
    # ``_iterate``) come from `PortalClient`; this class is the typed surface.
    def __init__(self, **options: Any) -> None:
        super().__init__(AsyncRunningHub(**options))

    @property
    def base_url(self) -> str:
        """The API host the client talks to."""
        return self._client.base_url

    def __repr__(self) -> str:
        return f"<runninghub_async.sync.RunningHub {self.base_url} {self._state.value}>"

    def _job(self, job: AsyncJob) -> Job:
        return Job(job, self)

    # -- jobs ---------------------------------------------------------------------------

    def submit(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        *,
        webhook_url: str | None = None,
        key: str | None = None,
    ) -> Job:
        """Submit one job; blocking ``runninghub_async.RunningHub.submit``."""
        job = self._call(
            lambda: self._client.submit(endpoint, params, webhook_url=webhook_url, key=key)
        )
        return Job(job, self)

    def run(
        self, endpoint: str, params: Mapping[str, Any], *, webhook_url: str | None = None
    ) -> JobResult:
        """Submit a job and wait for its result; blocking ``runninghub_async.RunningHub.run``."""
        return self._call(lambda: self._client.run(endpoint, params, webhook_url=webhook_url))

    def run_many(
        self,
        endpoint: str,
        params: Iterable[Mapping[str, Any]],
        *,
        window: int | None = None,
        journal: Journal | None = None,
        key: Callable[[Mapping[str, Any]], str] | None = None,
        resubmit_unknown: bool = False,
        max_cost: Decimal | float | str | None = None,
    ) -> Generator[BatchItem, None, None]:
        """Run one job per params, yielding each as it ends; see ``RunningHub.run_many``.

        Breaking out of the loop (or ``close()`` on the generator) stops the
        batch.  *params* is iterated on the client's thread, lazily: it should
        not block.  A *journal* must be one this client entered (``journal=``).
        """
        return self._iterate(
            lambda: self._client.run_many(
                endpoint,
                params,
                window=window,
                journal=journal,
                key=key,
                resubmit_unknown=resubmit_unknown,
                max_cost=max_cost,
            )
        )

    def recover(self) -> list[Job]:
        """Re-attach every journaled outstanding task; blocking ``RunningHub.recover``."""
        return [Job(job, self) for job in self._call(self._client.recover)]

    def attach(self, task_id: str, *, endpoint: str | None = None) -> Job:
        """Follow a task submitted earlier; blocking ``runninghub_async.RunningHub.attach``."""
        job = self._call_sync(lambda: self._client.attach(task_id, endpoint=endpoint))
        return Job(job, self)

    def query(self, task_id: str) -> TaskSnapshot:
        """One query of *task_id*; blocking ``runninghub_async.RunningHub.query``."""
        return self._call(lambda: self._client.query(task_id))

    def handle_webhook(
        self, payload: Mapping[str, Any] | str | bytes, *, token: str | None = None
    ) -> bool:
        """Take a TASK_END callback; see ``runninghub_async.RunningHub.handle_webhook``."""
        return self._call_sync(
            lambda: self._client.handle_webhook(payload, token=token)
        )

    # -- account and introspection -------------------------------------------------------

    def queue_status(self) -> QueueStatus:
        """The key's concurrency limit and load; see ``RunningHub.queue_status``."""
        return self._call(self._client.queue_status)

    def account(self) -> AccountStatus:
        """The account behind the key; blocking ``runninghub_async.RunningHub.account``."""
        return self._call(self._client.account)

    def statistics(self) -> ClientStatistics:
        """A snapshot of the client; see ``runninghub_async.RunningHub.statistics``.

        It does not start the client.
        """
        if self._state is State.OPEN:
            with contextlib.suppress(ClientClosedError):
                return self._call_sync(self._client.statistics)
        return self._client.statistics()


def _seconds(timeout: object) -> float | None:
    """*timeout* as float seconds, refused in the caller's thread if the loop's
    deadline arithmetic would choke on it (NaN, a str)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    try:
        seconds = float(timeout)
    except OverflowError:  # an int past float's range: forever (or refused below)
        seconds = math.inf if timeout > 0 else -math.inf
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"timeout must be a number of seconds >= 0, got {timeout!r}")
    return seconds


class Job:
    """A task on RunningHub, as the blocking client's ``submit`` and ``attach`` return it.

    It wraps ``runninghub_async.Job``: the job belongs to the client, many threads
    may ``wait()`` on it, and a wait that ends early (timeout, Ctrl-C) ends only
    that wait; the client goes on following the task.
    """

    __slots__ = ("_client", "_job")

    def __init__(self, job: AsyncJob, client: RunningHub) -> None:
        self._job = job
        self._client = client

    @property
    def task_id(self) -> str:
        """The RunningHub task id."""
        return self._job.task_id

    @property
    def endpoint(self) -> str | None:
        """The endpoint path it was submitted to, when known."""
        return self._job.endpoint

    @property
    def params(self) -> Mapping[str, Any] | None:
        """The params it was submitted with (None for an attached task)."""
        return self._job.params

    @property
    def status(self) -> TaskStatus:
        """The last status the client saw (``UNKNOWN`` before the first answer)."""
        return self._job.status

    def done(self) -> bool:
        """Whether the job has an outcome (a result or an error) already."""
        return self._job.done()

    def wait(self, timeout: float | None = None) -> JobResult:
        """Block until the task ends and return its result; see ``runninghub_async.Job.wait``.

        Args:
            timeout: seconds to wait at most, >= 0 (None: until the client's
                ``job_timeout``).  Only this wait ends; the job goes on.

        Raises:
            TimeoutError: *timeout* passed first (the built-in one, not
                ``JobTimeoutError``, which means the job itself timed out).
            TypeError: *timeout* is not a number or None.
            ValueError: *timeout* is NaN or negative.
            Everything ``runninghub_async.Job.wait`` raises.
        """
        seconds = _seconds(timeout)

        async def wait() -> JobResult:
            with anyio.fail_after(seconds):
                return await self._job.wait()

        return self._client._call(wait)

    def cancel(self) -> bool:
        """Ask RunningHub to cancel the task; see ``runninghub_async.Job.cancel``."""
        return self._client._call(self._job.cancel)

    def __repr__(self) -> str:
        return f"<runninghub_async.sync.Job {self.task_id} {self.endpoint or '?'}>"
