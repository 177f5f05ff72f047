"""Following tasks: attach, one-off queries, webhook callbacks, the account's state.

A mixin of `RunningHub`, so that the client facade stays a facade.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._errors import ProtocolError
from ._job import Job
from ._json import decode_json, is_task_id
from ._models import AccountStatus, QueueStatus, TaskSnapshot
from ._prepare import task_id_of

if TYPE_CHECKING:
    from ._live import Live

__all__ = ["TaskMethods"]


class TaskMethods:
    """``attach``, ``query``, ``handle_webhook``, ``queue_status`` and ``account``."""

    if TYPE_CHECKING:

        def _open(self) -> Live: ...

    def attach(self, task_id: str, *, endpoint: str | None = None) -> Job:
        """Follow a task submitted earlier (by this or another client or process).

        The job is checked at once and then like any other; its ``job_timeout``
        runs from now.  A task already followed returns a handle to the same job.

        Raises:
            ValueError: *task_id* is not a RunningHub task id.
            ClientClosedError: the client is not open.
        """
        live = self._open()
        task_id = task_id_of(task_id)
        tracked = live.poller.track(task_id, endpoint=endpoint)
        return Job(tracked, live.poller, live.api, params=None)

    async def query(self, task_id: str) -> TaskSnapshot:
        """One ``/openapi/v2/query`` of *task_id*, without waiting for it to end.

        Raises:
            ValueError: *task_id* is not a RunningHub task id.
            TaskNotFoundError: RunningHub does not know the task (or it expired).
            APIError, TransportError: the query failed.
        """
        return await self._open().api.query(task_id_of(task_id))

    def handle_webhook(
        self, payload: Mapping[str, Any] | str | bytes, *, token: str | None = None
    ) -> bool:
        """Take a RunningHub ``TASK_END`` callback as the signal to check that task now.

        Pass the body your webhook endpoint received, and the ``rh_token`` query
        parameter of its URL (``runninghub_async.webhooks`` does both).  RunningHub
        does not sign callbacks, so the payload is only a hint: one query confirms
        the outcome before any waiter sees it, and a forged callback cannot inject
        a result.

        Returns:
            True when the callback was taken: a task this client follows, with the
            right token when the client has a ``webhook_url``, the first time.
            False when it was ignored (unknown task, wrong token, duplicate).

        Raises:
            ValueError: *payload* is not a TASK_END callback.
        """
        live = self._open()
        if isinstance(payload, str | bytes):
            try:
                payload = decode_json(payload, "webhook payload")
            except ProtocolError:
                raise ValueError("webhook payload is not JSON (or nested too deeply)") from None
        if not isinstance(payload, Mapping) or payload.get("event") != "TASK_END":
            raise ValueError("not a RunningHub TASK_END callback")
        task_id = str(payload.get("taskId") or "")
        if not is_task_id(task_id):
            raise ValueError("webhook payload has no valid taskId")
        tracked = live.poller.get(task_id)
        if tracked is None or tracked.webhook_seen:
            return False
        expected = tracked.webhook_token
        # Compared as bytes: `compare_digest` refuses non-ASCII str, and a forged
        # token must be ignored like any wrong one, not fail the receiver.
        given = (token or "").encode("utf-8", "surrogatepass")
        if expected is not None and not hmac.compare_digest(expected.encode(), given):
            return False
        tracked.webhook_seen = True
        tracked.webhook_seen_at = anyio.current_time()
        return live.poller.poke(task_id)

    # -- account ---------------------------------------------------------------------

    async def queue_status(self) -> QueueStatus:
        """The key's concurrency limit and current load (``/openapi/v2/queue/status``)."""
        return await self._open().api.queue_status()

    async def account(self) -> AccountStatus:
        """The account behind the key: balance, coins, running tasks, key type."""
        return await self._open().api.account()
