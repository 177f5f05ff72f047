"""The exactly-once submit protocol, and the order in which it closes.

A submit is a paid, non-idempotent POST.  For each one:

1. wait for a job slot (closable: a close ends this wait, nothing is sent);
2. POST in a task the client owns (made in the caller's task, so it carries the
   caller's context), so a caller cancelled while the POST is on the wire (by
   anyio or by a bare ``task.cancel()``) cannot lose an accepted task;
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

from ._api import Api
from ._concurrency import TaskSet
from ._config import RetryPolicy
from ._errors import (
    ClientClosedError,
    ConcurrencyLimitError,
    RunningHubError,
    SubmitOutcomeUnknownError,
    TransportError,
    leaves_outcome_unknown,
    proves_not_accepted,
)
from ._hooks import Hooks, safely
from ._journal import Journal, params_digest
from ._limiter import Limiter, Slot, monotonic
from ._models import TaskSnapshot
from ._poller import Poller, Tracked

__all__ = ["Submitter"]

log = logging.getLogger("runninghub_async")
T = TypeVar("T")

# Backoff steps after a rejection stop growing here.
_MAX_BACKOFF_STEP = 6
# Seconds a journal write may hold a submit that is failing or being cancelled.
_JOURNAL_BOUND = 5.0


class _Post:
    """One submit, shared by the task sending it and the caller waiting for it."""

    __slots__ = (
        "answer",
        "body",
        "endpoint",
        "intended",
        "journal",
        "key",
        "on_wire",
        "params",
        "slot",
        "started",
        "webhook_token",
    )

    def __init__(
        self,
        endpoint: str,
        body: bytes,
        params: Mapping[str, Any],
        webhook_token: str | None,
        journal: Journal | None,
        key: str | None,
        started: float,
    ) -> None:
        self.endpoint, self.body, self.params = endpoint, body, params
        self.webhook_token, self.journal, self.key = webhook_token, journal, key
        self.started = started
        self.intended = False  # a journal intent was written
        self.on_wire = False  # a POST of it is being sent
        # The attempt being sent: its slot, and where its task puts what it ended in.
        self.slot: Slot | None = None
        self.answer: _Answer | None = None


_POST_TASK = "runninghub_async._submit.Submitter._post"
# What one POST ends in: the tracked task, or why not.
_Answer = asyncio.Future["Tracked | RunningHubError"]


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
        self._unstarted: set[_Post] = set()  # handed to a task that has not run yet
        self._closing = False
        self._waiting: set[asyncio.Task[Any]] = set()
        self._closed_waits: set[asyncio.Task[Any]] = set()
        self.sent = 0
        self.accepted = 0
        self.unknown = 0  # sent, and never answered: each may have created a task
        self.orphaned: list[str] = []
        """Task ids accepted after their caller was cancelled (followed all the same)."""

    async def _closable(self, awaitable: Awaitable[T]) -> T:
        """Await *awaitable*, or raise ClientClosedError if the client closes first.

        `close` cancels the waiting task itself (a cancel scope per queued submit
        costs more than its wait) and the cancellation it caused is taken back
        here, so any other cancellation of the task still goes through.
        """
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task in self._closed_waits:
                self._closed_waits.discard(task)
                if task.uncancel() == 0:
                    raise ClientClosedError(
                        "the client closed before this submit was sent"
                    ) from None
            raise
        finally:
            self._waiting.discard(task)

    def submit(
        self,
        endpoint: str,
        body: bytes,
        params: Mapping[str, Any],
        *,
        webhook_token: str | None = None,
        journal: Journal | None = None,
        key: str | None = None,
    ) -> Awaitable[Tracked]:
        """Send the submit until RunningHub accepts or refuses it (await the result).

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
        post = _Post(endpoint, body, params, webhook_token, journal, key, monotonic())
        if self._hooks is not None:
            safely(self._hooks, "submit", endpoint)
        if journal is None or key is None:
            return self._until_answered(post)  # no coroutine of its own: one per submit less
        return self._journaled(post, journal, key)

    async def _journaled(self, post: _Post, journal: Journal, key: str) -> Tracked:
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
        start = post.started
        attempt = 0
        while True:
            self._refuse_if_closing()
            asked = monotonic()
            # A free slot needs no closable wait (and its cancel scope): the common case.
            slot = self._limiter.try_acquire_slot() if attempt == 0 else None
            if slot is None:
                slot = await self._closable(self._limiter.acquire_slot(front=attempt > 0))
            self._refuse_if_closing(slot)
            if self._hooks is not None and (waited := monotonic() - asked) > 0:
                safely(self._hooks, "slot_wait", endpoint, waited)
            if post.journal is not None and post.key is not None:
                try:
                    # The request budget first: an intent written before a long wait
                    # for it would read, after a crash, as a submit that may have left.
                    await self._limiter.acquire_request()
                    await post.journal.intent(post.key, endpoint, params_digest(params))
                except BaseException:
                    slot.release()  # not recorded, so not sent
                    raise
                post.intended = True
                self._refuse_if_closing(slot)  # it may have closed during the write
            post.on_wire = True
            answer = self._send(post, slot)
            try:
                # Cancelling this wait cancels *answer*: the POST sees its caller left.
                error = await answer
            except BaseException:
                self._left(post, answer)
                raise
            post.on_wire = False
            if isinstance(error, Tracked):
                return error
            in_time = monotonic() - start < self._job_timeout
            if not proves_not_accepted(error):
                if leaves_outcome_unknown(error) and not isinstance(
                    error, SubmitOutcomeUnknownError
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

    def _send(self, post: _Post, slot: Slot) -> _Answer:
        """Start one POST in a client-owned task; await the tracked task or the error it met.

        A plain function (the caller awaits the future): no coroutine per submit.
        """
        self.sent += 1
        post.slot = slot
        answer: _Answer = asyncio.get_running_loop().create_future()
        post.answer = answer
        self._unstarted.add(post)
        self._tasks.spawn(self._post(post), _POST_TASK)
        return answer

    def _left(self, post: _Post, answer: _Answer) -> None:
        """The caller stopped waiting for *answer*: an accepted task becomes an orphan."""
        if answer.done() and not answer.cancelled():
            outcome = answer.result()  # answered, but the caller was cancelled first
            if isinstance(outcome, Tracked):
                self._orphan(post, outcome)

    async def _post(self, post: _Post) -> None:
        self._unstarted.discard(post)
        slot, answer = post.slot, post.answer
        assert slot is not None
        assert answer is not None
        outcome: Tracked | RunningHubError | None = None
        unexpected: BaseException | None = None
        try:
            # A journaled submit took its request budget before its intent (above).
            snapshot = await self._api.submit(post.endpoint, post.body, paced=post.intended)
        except RunningHubError as exc:
            if isinstance(exc, ConcurrencyLimitError):
                self._limiter.slot_rejected()  # while the slot is still held
            slot.release()
            outcome = exc
        except BaseException as exc:
            slot.release()
            if not isinstance(exc, Exception):
                raise  # cancelled: the client is closing past its bound (answered below)
            log.exception("unexpected error while submitting to %s", post.endpoint)
            unexpected = exc
        else:
            if post.journal is not None and post.key is not None:
                # Durable before anyone can see the job: a crash from here on is recoverable.
                journal_write = post.journal.accepted(post.key, snapshot.task_id)
                await _journal_quietly(journal_write, post.key)
            outcome = self._accepted(post, slot, snapshot)
            if isinstance(outcome, Tracked) and answer.cancelled():
                self._orphan(post, outcome)
        finally:
            if outcome is None:  # an unexpected error, or the close cancelled it on the wire
                cause = unexpected or ClientClosedError(
                    "the client closed while the submit was on the wire"
                )
                outcome = SubmitOutcomeUnknownError(post.endpoint, post.params, cause)
            if not isinstance(outcome, Tracked) and leaves_outcome_unknown(outcome):
                self._unknown(post, outcome, caller_left=answer.done())
            # Whatever happened, the caller hears of it (unless it has left).
            if not answer.done():
                answer.set_result(outcome)

    def _accepted(
        self, post: _Post, slot: Slot, snapshot: TaskSnapshot
    ) -> Tracked | RunningHubError:
        """Track a task RunningHub accepted (the slot goes to the poller)."""
        task_id = snapshot.task_id
        self.accepted += 1
        self._limiter.slot_accepted()
        if self._hooks is not None:
            seconds = monotonic() - post.started
            safely(self._hooks, "accepted", post.endpoint, task_id, seconds)
        try:
            tracked = self._poller.track(
                task_id, endpoint=post.endpoint, slot=slot, webhook_token=post.webhook_token
            )
        except ClientClosedError as exc:
            log.warning(
                "RunningHub accepted task %s (%s) after the client closed; it is not followed",
                task_id,
                post.endpoint,
            )
            return exc
        tracked.journal, tracked.key = post.journal, post.key
        tracked.note(snapshot.status, None)
        if snapshot.status.is_terminal:
            self._poller.resolve(snapshot)
        log.debug("submitted %s to %s", task_id, post.endpoint)
        return tracked

    def _unknown(self, post: _Post, error: RunningHubError, *, caller_left: bool) -> None:
        """Count a submit that was sent and never answered; say so if nobody else will."""
        self.unknown += 1
        if caller_left:
            # Its caller would have raised SubmitOutcomeUnknownError: the log is all there is.
            log.warning(
                "the caller of a submit to %s was cancelled while it was on the wire, and "
                "no answer came back (%s): RunningHub may have created a task this client "
                "does not follow%s",
                post.endpoint,
                error,
                "; its journal intent stays for recover()" if post.journal is not None else "",
            )

    def _orphan(self, post: _Post, tracked: Tracked) -> None:
        self.orphaned.append(tracked.task_id)
        log.warning(
            "the caller of a submit to %s was cancelled after RunningHub accepted it; "
            "the client follows task %s until it ends",
            post.endpoint,
            tracked.task_id,
        )

    def close(self) -> None:
        """Stop accepting submits; those waiting for a slot end with ClientClosedError."""
        self._closing = True
        for task in self._waiting - self._closed_waits:
            self._closed_waits.add(task)
            task.cancel()

    async def drain(self, bound: float) -> None:
        """Wait (shielded, at most *bound* seconds) for the POSTs on the wire to answer.

        Those still on the wire after that are cancelled: their callers get
        `SubmitOutcomeUnknownError`.
        """
        with anyio.move_on_after(bound, shield=True):
            await self._tasks.join()
        await self._tasks.aclose()
        for post in self._unstarted:
            # Its task was cancelled before it ran (a task cancelled that early never
            # starts, so its own `finally` cannot answer): nothing was sent.
            slot, answer = post.slot, post.answer
            assert slot is not None
            assert answer is not None
            slot.release()
            if not answer.done():
                answer.set_result(ClientClosedError("the client closed before the submit was sent"))
        self._unstarted.clear()
