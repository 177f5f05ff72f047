"""The exactly-once submit protocol, and the order in which it closes.

A submit is a paid, non-idempotent POST.  For each one:

1. wait for a job slot (closable: a close ends this wait, nothing is sent);
2. POST in a task the client owns, so a caller cancelled while the POST is on the
   wire (by anyio or by a bare ``task.cancel()``) cannot lose an accepted task;
3. classify the answer with ``_errors.proves_not_accepted``: a rejection that
   proves nothing was created (421, 429, 1003, connection refused, ...) waits and
   goes again; an answer that may hide an accepted task raises
   `SubmitOutcomeUnknownError` and is never resent;
4. hand the task id and its slot to the poller, which releases the slot when the
   job ends.

Close order (``Submitter.close`` then ``drain``, then the poller closes):

1. stop accepting submits;
2. submits still waiting for a slot (or backing off before a resend) end with
   `ClientClosedError` and are never sent;
3. POSTs already on the wire are awaited (shielded, bounded by the exchange
   deadline); a task id they bring back is tracked, so the poller's close names it
   in the `ClientClosedError.task_ids` of whoever waits, and it is logged when
   nobody does.  Nothing is raised into the client's task group;
4. the poller ends every waiter; then the sessions close.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.abc
import attrs

from ._api import Api
from ._concurrency import TaskSet
from ._config import RetryPolicy
from ._errors import (
    ClientClosedError,
    ConcurrencyLimitError,
    RunningHubError,
    ServerError,
    SubmitOutcomeUnknownError,
    TransportError,
    proves_not_accepted,
)
from ._hooks import Hooks, safely
from ._journal import Journal, params_digest
from ._limiter import Limiter, Slot
from ._poller import Poller, Tracked

__all__ = ["Submitter"]

log = logging.getLogger("runninghub_async")
T = TypeVar("T")

# Backoff steps after a rejection stop growing here.
_MAX_BACKOFF_STEP = 6
# Seconds a journal write may hold a submit that is failing or being cancelled.
_JOURNAL_BOUND = 5.0


@attrs.define(eq=False)
class _Post:
    """One submit POST, shared by the task sending it and the caller waiting for it."""

    endpoint: str
    body: bytes
    params: Mapping[str, Any]
    webhook_token: str | None = None
    journal: Journal | None = None
    key: str | None = None
    started: float = 0.0
    intended: bool = attrs.field(default=False, init=False)
    on_wire: bool = attrs.field(default=False, init=False)
    # Per attempt: `attempt()` makes a fresh one of these for each send.
    answered: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    tracked: Tracked | None = attrs.field(default=None, init=False)
    error: BaseException | None = attrs.field(default=None, init=False)
    abandoned: bool = attrs.field(default=False, init=False)

    def attempt(self) -> _Post:
        """A fresh POST of the same submit."""
        return _Post(
            self.endpoint,
            self.body,
            self.params,
            self.webhook_token,
            self.journal,
            self.key,
            self.started,
        )


async def _journal_quietly(write: Awaitable[None], key: str) -> None:
    """Await a journal write; a failure is logged, never raised past a paid submit."""
    try:
        await write
    except Exception as exc:
        log.error("could not journal submit %s: %s", key, exc)


class Submitter:
    """Sends submits exactly once and hands accepted tasks to the poller."""

    def __init__(
        self,
        api: Api,
        limiter: Limiter,
        poller: Poller,
        tg: anyio.abc.TaskGroup,
        *,
        job_timeout: float,
        retry: RetryPolicy,
        rng: random.Random,
        hooks: Hooks | None = None,
    ) -> None:
        self._hooks = hooks
        self._api = api
        self._limiter = limiter
        self._poller = poller
        self._tg = tg
        self._job_timeout = job_timeout
        self._retry = retry
        self._rng = rng
        self._tasks = TaskSet()
        self._closing = False
        self._waits: set[anyio.CancelScope] = set()
        self._posts: set[_Post] = set()
        self.sent = 0
        self.accepted = 0
        self.orphaned: list[str] = []
        """Task ids accepted after their caller was cancelled (followed all the same)."""

    async def _closable(self, awaitable: Awaitable[T]) -> T:
        """Await *awaitable*, or raise ClientClosedError if the client closes first."""
        scope = anyio.CancelScope()
        self._waits.add(scope)
        try:
            with scope:
                return await awaitable
        finally:
            self._waits.discard(scope)
        raise ClientClosedError("the client closed before this submit was sent")

    async def submit(
        self,
        endpoint: str,
        body: bytes,
        params: Mapping[str, Any],
        *,
        webhook_token: str | None = None,
        journal: Journal | None = None,
        key: str | None = None,
    ) -> Tracked:
        """Send the submit until RunningHub accepts or refuses it.

        With a *journal*, the intent is recorded under *key* before every send, the
        task id right after acceptance, and ``REJECTED`` when it is definitely not
        accepted; an unknown outcome leaves the intent alone, for ``recover()``.

        Raises:
            SubmitOutcomeUnknownError: it was sent and may have been accepted.
            APIError: RunningHub refused it (after absorbing rejections that prove
                nothing was created, within ``job_timeout``).
            ConnectError: connecting failed every time (nothing was sent).
            ClientClosedError: the client closed before it was sent.
        """
        post = _Post(endpoint, body, params, webhook_token, journal, key, anyio.current_time())
        if self._hooks is not None:
            safely(self._hooks, "submit", endpoint)
        if journal is None or key is None:
            return await self._until_answered(post)
        try:
            return await self._until_answered(post)
        except SubmitOutcomeUnknownError:
            raise  # the intent stays: recover() reports it
        except BaseException as exc:
            accepted = isinstance(exc, ClientClosedError) and exc.task_ids
            # Cancelled with a POST on the wire: its outcome is unknown, the intent stays.
            # Anywhere else (waiting for a slot, backing off, refused) nothing was taken.
            if post.intended and not accepted and not post.on_wire:
                # Bounded: a journal that cannot be reached must not hold a cancellation.
                with anyio.move_on_after(_JOURNAL_BOUND, shield=True):
                    await _journal_quietly(journal.ended(key, "REJECTED"), key)
            raise

    async def _until_answered(self, post: _Post) -> Tracked:
        endpoint, params = post.endpoint, post.params
        start = anyio.current_time()
        attempt = 0
        while True:
            self._refuse_if_closing()
            asked = anyio.current_time()
            # A free slot needs no closable wait (and its cancel scope): the common case.
            slot = self._limiter.try_acquire_slot() if attempt == 0 else None
            if slot is None:
                slot = await self._closable(self._limiter.acquire_slot(front=attempt > 0))
            self._refuse_if_closing(slot)
            if self._hooks is not None and (waited := anyio.current_time() - asked) > 0:
                safely(self._hooks, "slot_wait", endpoint, waited)
            if post.journal is not None and post.key is not None:
                try:
                    await post.journal.intent(post.key, endpoint, params_digest(params))
                except BaseException:
                    slot.release()  # not recorded, so not sent
                    raise
                post.intended = True
            post.on_wire = True
            error = await self._send(post.attempt(), slot)
            post.on_wire = False
            if isinstance(error, Tracked):
                return error
            in_time = anyio.current_time() - start < self._job_timeout
            if not proves_not_accepted(error):
                if (isinstance(error, TransportError) and error.request_sent) or (
                    isinstance(error, ServerError) and (error.http_status or 0) >= 500
                ):
                    raise SubmitOutcomeUnknownError(endpoint, params, error) from None
                raise error
            attempt += 1
            connect_failed = isinstance(error, TransportError)
            if not in_time or (connect_failed and attempt >= self._retry.attempts):
                raise error
            log.debug("submit to %s rejected (%s); will resend", endpoint, error)
            if self._hooks is not None:
                code = getattr(error, "code", type(error).__name__)
                safely(self._hooks, "rejected", endpoint, code)
            own_jobs = self._limiter.statistics().in_flight > 0
            if not (isinstance(error, ConcurrencyLimitError) and own_jobs):
                # With our own jobs running, their end is the signal to retry;
                # otherwise (a rate limit, or the account busy elsewhere) back off.
                step = min(attempt - 1, _MAX_BACKOFF_STEP)
                await self._closable(anyio.sleep(self._retry.wait(step, self._rng)))

    def _refuse_if_closing(self, slot: Slot | None = None) -> None:
        if self._closing:
            if slot is not None:
                slot.release()
            raise ClientClosedError("the client is closing; the submit was not sent")

    async def _send(self, post: _Post, slot: Slot) -> Tracked | RunningHubError:
        """One POST in a client-owned task; the tracked task or the error it met."""
        self.sent += 1
        self._posts.add(post)
        self._tasks.spawn(self._post(post, slot), "runninghub_async._submit.Submitter._post")
        try:
            await post.answered.wait()
        except BaseException:
            post.abandoned = True
            if post.tracked is not None:
                self._orphan(post)
            raise
        if post.tracked is not None:
            return post.tracked
        assert isinstance(post.error, RunningHubError)
        return post.error

    async def _post(self, post: _Post, slot: Slot) -> None:
        try:
            snapshot = await self._api.submit(post.endpoint, post.body)
        except RunningHubError as exc:
            if isinstance(exc, ConcurrencyLimitError):
                self._limiter.slot_rejected()  # while the slot is still held
            slot.release()
            post.error = exc
        except BaseException as exc:
            slot.release()
            cause = ClientClosedError("the client closed while the submit was on the wire")
            post.error = SubmitOutcomeUnknownError(post.endpoint, post.params, cause)
            if not isinstance(exc, Exception):
                raise  # cancelled: the client is closing past its bound
            log.exception("unexpected error while submitting to %s", post.endpoint)
        else:
            self.accepted += 1
            self._limiter.slot_accepted()
            if self._hooks is not None:
                seconds = anyio.current_time() - post.started
                safely(self._hooks, "accepted", post.endpoint, snapshot.task_id, seconds)
            if post.journal is not None and post.key is not None:
                # Durable before anyone can see the job: a crash from here on is recoverable.
                await _journal_quietly(post.journal.accepted(post.key, snapshot.task_id), post.key)
            try:
                tracked = self._poller.track(
                    snapshot.task_id,
                    endpoint=post.endpoint,
                    slot=slot,
                    webhook_token=post.webhook_token,
                )
            except ClientClosedError as exc:
                post.error = exc
                log.warning(
                    "RunningHub accepted task %s (%s) after the client closed; it is not followed",
                    snapshot.task_id,
                    post.endpoint,
                )
            else:
                tracked.journal, tracked.key = post.journal, post.key
                tracked.note(snapshot.status, None)
                if snapshot.status.is_terminal:
                    self._poller.resolve(snapshot)
                post.tracked = tracked
                if post.abandoned:
                    self._orphan(post)
                log.debug("submitted %s to %s", snapshot.task_id, post.endpoint)
        finally:
            self._posts.discard(post)
            post.answered.set()

    def _orphan(self, post: _Post) -> None:
        assert post.tracked is not None
        self.orphaned.append(post.tracked.task_id)
        log.warning(
            "the caller of a submit to %s was cancelled after RunningHub accepted it; "
            "the client follows task %s until it ends",
            post.endpoint,
            post.tracked.task_id,
        )

    def close(self) -> None:
        """Stop accepting submits; those waiting for a slot end with ClientClosedError."""
        self._closing = True
        for scope in list(self._waits):
            scope.cancel()

    async def drain(self, bound: float) -> None:
        """Wait (shielded, at most *bound* seconds) for the POSTs on the wire to answer.

        Those still on the wire after that are cancelled: their callers get
        `SubmitOutcomeUnknownError`.
        """
        with anyio.move_on_after(bound, shield=True):
            while self._posts:
                await next(iter(self._posts)).answered.wait()
        await self._tasks.aclose()
