"""What exists only while a client is open: its sessions, API, poller, submitter, tasks.

`opened` builds them in dependency order on entry and takes them down in the
close order `_submit` documents on exit.  The client keeps what outlives an open
(its limiter, journal, hooks, costs) and passes them in.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Callable
from typing import Final

import anyio
import anyio.abc
import attrs

from ._api import Api
from ._config import ClientConfig
from ._errors import RunningHubError
from ._hooks import Hooks, safely
from ._journal import Journal
from ._journaling import JournalWriter
from ._limiter import Limiter
from ._models import JobResult
from ._poller import Poller, Tracked
from ._submit import Submitter
from ._transport import Transport
from ._wire import converter

__all__ = ["Live", "opened"]

Finished = Callable[[Tracked, JobResult | RunningHubError], None]

# The most slots ``max_in_flight="auto"`` takes from ``concurrentLimit``.  The
# number sizes the slot window and ``run_many``'s default window (the memory a
# batch holds), so a server's 10**30 must not become ours; real keys have a
# few (NORMAL: 2), and 1000 is the personal queue's own cap (code 814).
MAX_AUTO_LIMIT: Final = 1000


@attrs.define
class Live:
    """The collaborators a client builds on entry and drops on exit."""

    transport: Transport
    api: Api
    poller: Poller
    submitter: Submitter
    tg: anyio.abc.TaskGroup
    writer: JournalWriter


@contextlib.asynccontextmanager
async def opened(
    config: ClientConfig,
    limiter: Limiter,
    *,
    journal: Journal | None,
    hooks: Hooks | None,
    rng: random.Random,
    on_finished: Finished,
) -> AsyncIterator[Live]:
    """Build a client's collaborators, run its background tasks, and close them in order.

    *on_finished* is told of every job's end after the journal writer is.  The
    transport is closed last, shielded: connections never outlive the client,
    whatever ended the block.
    """

    def throttled(retry_after: float | None) -> None:
        limiter.throttled(retry_after)
        if hooks is not None:
            safely(hooks, "throttled", retry_after)

    def retried(what: str, error: BaseException, delay: float) -> None:
        safely(hooks, "retry", what, error, delay)

    transport = Transport(
        base_url=config.base_url,
        api_key=config.api_key,
        pace=limiter.acquire_request,
        retry=config.retry,
        timeouts=config.timeouts,
        max_connections=config.max_connections,
        rng=rng,
        on_retry=retried if hooks is not None else None,
    )
    api = Api(transport, converter(), api_key=config.api_key, throttled=throttled)
    writer = JournalWriter()

    def finished(tracked: Tracked, outcome: JobResult | RunningHubError) -> None:
        writer.finished(tracked, outcome)
        on_finished(tracked, outcome)

    try:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(limiter)
            if journal is not None:
                await stack.enter_async_context(journal)
            poller = Poller(
                # Each check is bounded by the exchange's own deadline (no extra timer).
                lambda task_id: api.query(task_id, retry=False, within=config.poll.check_timeout),
                config.poll,
                job_timeout=config.job_timeout,
                remote_cancel=api.cancel,
                slot_demand=limiter.slot_demand,
                on_finished=finished,
                hooks=hooks,
                rng=rng,
            )
            tg = anyio.create_task_group()
            await tg.__aenter__()
            submitter = Submitter(
                api,
                limiter,
                poller,
                tg,
                job_timeout=config.job_timeout,
                retry=config.retry,
                rng=rng,
                hooks=hooks,
            )
            live = Live(transport, api, poller, submitter, tg, writer)
            try:
                await tg.start(writer.run)
                await tg.start(poller.run)
                if config.auto_limit:
                    status = await api.queue_status()
                    limiter.set_limit(min(MAX_AUTO_LIMIT, max(1, status.concurrent_limit)))
                yield live
            finally:
                await _close(live, config.timeouts.total)
    finally:
        with anyio.CancelScope(shield=True):
            await transport.aclose()


async def _close(live: Live, bound: float) -> None:
    """The close order of `_submit`: submits, then POSTs on the wire, then the poller."""
    live.submitter.close()
    await live.submitter.drain(bound)
    live.poller.close()
    await live.writer.close(bound)
    live.tg.cancel_scope.cancel()
    # Closed as if the body had ended, so the body's own exception (if any)
    # reaches the caller as itself, never inside an ExceptionGroup.  (Not under
    # a new shield: the group's own scope must be the innermost one it leaves.)
    await live.tg.__aexit__(None, None, None)
