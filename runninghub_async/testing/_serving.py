"""Running the fake: its HTTP server, webhook session and task group, opened and closed in order.

`serve` owns every resource the fake holds while it runs.  What it adds over
nesting ``async with`` blocks is the shutdown order: the HTTP server stops first
(no new requests, tasks or webhooks), then the task timers, then pending webhook
deliveries, and the webhook session closes last.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import aiohttp
import anyio
from aiohttp import web

from ._config import FakeConfig
from ._state import TaskBook
from ._webhook_log import WebhookLog
from ._webhooks import WebhookSender

__all__ = ["serve"]

_SHUTDOWN_TIMEOUT = 0.5  # in-flight handlers (say a "slow" fault) get this long at exit
_CLEANUP_DEADLINE = 10.0


class _Once:
    """Runs an async cleanup at most once, shielded from cancellation and bounded in time."""

    def __init__(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        self._cleanup: Callable[[], Awaitable[None]] | None = cleanup

    async def __call__(self) -> None:
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is None:
            return
        # Shielded so that a cancelled test still closes its sockets; bounded so
        # that a stuck handler cannot hang the exit.
        with anyio.move_on_after(_CLEANUP_DEADLINE, shield=True):
            await cleanup()


def _bump(book: TaskBook, counter: str) -> None:
    counters = book.counters
    setattr(counters, counter, getattr(counters, counter) + 1)
    book.notify()


@asynccontextmanager
async def serve(
    app: web.Application, *, config: FakeConfig, book: TaskBook, webhooks: WebhookLog
) -> AsyncGenerator[str]:
    """Serve *app* on ``config.host:config.port`` and yield its ``http://host:port`` base URL.

    While the block runs, *book* is open (its task timers fire) and *webhooks*
    has a sender that delivers in a task group owned here.  An exception raised
    in the block reaches the caller as itself, not inside an ExceptionGroup.

    Raises:
        OSError: the address cannot be bound.
    """
    async with AsyncExitStack() as stack:
        timeout = aiohttp.ClientTimeout(total=config.webhook_timeout)
        session = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
        runner = web.AppRunner(
            app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        stop_http = _Once(runner.cleanup)
        await runner.setup()
        stack.push_async_callback(stop_http)
        await web.TCPSite(runner, config.host, config.port).start()
        host, port = runner.addresses[0][:2]
        base_url = f"http://{host}:{port}"

        error: Exception | None = None
        async with anyio.create_task_group() as task_group:
            webhooks.sender = WebhookSender(
                session,
                task_group,
                attempts=config.webhook_attempts,
                retry_delay=config.webhook_retry_delay,
                on_attempt=functools.partial(_bump, book, "webhook_attempts"),
                on_delivered=functools.partial(_bump, book, "webhook_deliveries"),
                on_given_up=functools.partial(_bump, book, "webhook_failures"),
            )
            book.open(asyncio.get_running_loop(), base_url)
            try:
                yield base_url
            except Exception as exc:
                # Re-raised once the task group is closed, so the caller gets
                # its own exception back rather than an ExceptionGroup around it.
                # Cancellation is not caught here and passes straight through.
                error = exc
            finally:
                webhooks.sender = None
                # HTTP first (no new requests, tasks or webhooks), then the timers,
                # then pending webhook deliveries.
                await stop_http()
                book.close()
                task_group.cancel_scope.cancel()
        if error is not None:
            raise error
