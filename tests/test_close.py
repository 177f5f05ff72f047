"""Closing under load: nothing escapes, nothing queued is sent, every accepted task is named."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from runninghub_async import (
    AuthenticationError,
    ClientClosedError,
    RunningHub,
    RunningHubError,
    SubmitOutcomeUnknownError,
)
from runninghub_async._journal import FileJournal
from runninghub_async.testing import FakeRunningHub, Fault

from .conftest import FAST_POLL, FAST_RETRY

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
PARAMS = {"prompt": "closing time", "resolution": "1k"}


def _sent(count: int) -> Callable[[FakeRunningHub], bool]:
    return lambda fake: fake.stats.submit_requests >= count


def _client(fake: FakeRunningHub, **overrides: object) -> RunningHub:
    options: dict[str, object] = {
        "api_key": fake.api_key,
        "base_url": fake.base_url,
        "max_in_flight": 4,
        "requests_per_second": None,
        "poll": FAST_POLL,
        "retry": FAST_RETRY,
    }
    options.update(overrides)
    return RunningHub(**options)  # type: ignore[arg-type]


async def test_leaving_right_after_a_cancelled_submit_never_raises_a_group() -> None:
    """200 rounds of: submits on the wire (slow answers) and queued, then leave at once."""
    slow = Fault("slow", route="submit", delay=0.005)
    async with FakeRunningHub(duration=None, faults=[slow]) as fake:
        async def submit(client: RunningHub) -> None:
            with contextlib.suppress(RunningHubError):  # closed, or outcome unknown: fine
                await client.submit(T2I, PARAMS)

        for _ in range(200):
            sent_before = fake.stats.submit_requests

            async with _client(fake, max_in_flight=2) as client:
                async with anyio.create_task_group() as tg:
                    for _ in range(4):
                        tg.start_soon(submit, client)
                    await fake.wait_for(_sent(sent_before + 2), timeout=5)
                    tg.cancel_scope.cancel()
            # Only the two that held slots may have been sent; the queued two never are.
            assert fake.stats.submit_requests - sent_before <= 2


async def test_close_with_hundreds_of_submitters_names_every_accepted_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """300 submitters, the client closed under them: every task the server took is named."""
    slow = Fault("slow", route="submit", delay=0.05)
    caplog.set_level(logging.WARNING, logger="runninghub_async")
    named: set[str] = set()
    never_sent = 0
    async with FakeRunningHub(duration=None, faults=[slow]) as fake:
        client = _client(fake, max_in_flight=40)

        async def submit() -> None:
            nonlocal never_sent
            try:
                job = await client.submit(T2I, PARAMS)
                named.add(job.task_id)
            except ClientClosedError as exc:
                named.update(exc.task_ids)
                if not exc.task_ids:
                    never_sent += 1
            except SubmitOutcomeUnknownError:
                pass

        async with anyio.create_task_group() as tg:
            async with client:
                for _ in range(300):
                    tg.start_soon(submit)
                await fake.wait_for(lambda f: f.stats.submit_requests >= 40, timeout=10)
            # Left with submitters still running: they see the close, not a cancel.
        accepted = set(fake.tasks)
    logged = {t for t in accepted if any(t in r.getMessage() for r in caplog.records)}
    assert accepted <= named | logged | set(client.statistics().orphaned)
    assert never_sent >= 300 - 40 - len(accepted)
    assert fake.stats.submit_requests <= 40 + len(accepted)


async def test_an_abandoned_job_frees_its_slot_soon_when_others_wait() -> None:
    """A job nobody waits for holds a slot that a queued submit wants: checked at its cadence."""
    async with FakeRunningHub(duration=None) as fake:
        async with _client(fake, max_in_flight=1) as client:
            first = await client.submit(T2I, PARAMS)  # nobody will wait for it
            async with anyio.create_task_group() as tg:
                got: list[str] = []

                async def second() -> None:
                    got.append((await client.submit(T2I, PARAMS)).task_id)

                tg.start_soon(second)
                await anyio.wait_all_tasks_blocked()
                fake.finish(first.task_id)
                with anyio.fail_after(1.0):  # FAST_POLL's max_interval is 0.1 s
                    await fake.wait_for(lambda f: len(f.tasks) == 2, timeout=1.0)
            assert len(got) == 1


async def test_cancel_of_a_task_that_just_ended_returns_false() -> None:
    """Cancel answered 805 because the task ended during the round trip: False, no error."""
    async with FakeRunningHub(duration=None) as fake:
        async with _client(fake) as client:
            job = await client.submit(T2I, PARAMS)
            fake.finish(job.task_id)
            assert await job.cancel() is False
            assert (await job.wait()).task_id == job.task_id


async def test_a_failed_start_raises_its_own_error_and_leaves_nothing_running() -> None:
    """max_in_flight="auto" with a bad key: AuthenticationError itself, no task left behind."""
    async with FakeRunningHub() as fake:
        outside = {task.id for task in anyio.get_running_tasks()}
        client = RunningHub(api_key="wrong", base_url=fake.base_url, max_in_flight="auto")
        with pytest.raises(AuthenticationError):
            async with client:
                pass
        assert {task.id for task in anyio.get_running_tasks()} == outside


async def test_a_queued_submit_cancelled_by_its_caller_as_the_client_closes_stays_cancelled() -> (
    None
):
    """Close ends queued submits with ClientClosedError, but never swallows a caller's cancel."""
    async with FakeRunningHub(duration=None) as fake:
        client = _client(fake, max_in_flight=1)
        outcomes: list[BaseException] = []
        scope = anyio.CancelScope()

        async def queued() -> None:
            with scope:
                try:
                    await client.submit(T2I, PARAMS)
                except BaseException as exc:
                    outcomes.append(exc)
                    raise

        async with anyio.create_task_group() as tg:
            async with client:
                await client.submit(T2I, PARAMS)  # holds the only slot
                tg.start_soon(queued)
                while client.statistics().limiter.waiting_for_slot == 0:
                    await anyio.lowlevel.checkpoint()
                scope.cancel()
                # Leaving closes the client, which cancels the queued submit's task too.
        assert fake.stats.submit_requests == 1
    assert len(outcomes) == 1
    assert isinstance(outcomes[0], anyio.get_cancelled_exc_class())


async def test_a_submit_queued_at_close_ends_with_client_closed_error() -> None:
    """The plain case: a submit waiting for a slot when the client closes is refused, unsent."""
    async with FakeRunningHub(duration=None) as fake:
        client = _client(fake, max_in_flight=1)
        async with anyio.create_task_group() as tg:
            caught: list[BaseException] = []

            async def queued() -> None:
                try:
                    await client.submit(T2I, PARAMS)
                except ClientClosedError as exc:
                    caught.append(exc)

            async with client:
                await client.submit(T2I, PARAMS)
                tg.start_soon(queued)
                while client.statistics().limiter.waiting_for_slot == 0:
                    await anyio.lowlevel.checkpoint()
        assert fake.stats.submit_requests == 1
    assert len(caught) == 1


async def test_a_submit_whose_journal_write_outlasts_the_close_is_not_sent(
    tmp_path: Path,
) -> None:
    """Closing while a submit records its intent: it is refused after the write, unsent."""
    entered, release = anyio.Event(), anyio.Event()

    class SlowJournal(FileJournal):
        async def intent(self, key: str, endpoint: str, params_digest: str) -> None:
            await super().intent(key, endpoint, params_digest)
            entered.set()
            await release.wait()

    caught: list[BaseException] = []
    journal = SlowJournal(tmp_path / "j.jsonl")
    async with FakeRunningHub(duration=None) as fake:
        client = _client(fake, journal=journal)  # the client opens and closes it

        async def submit() -> None:
            try:
                await client.submit(T2I, PARAMS, key="k1")
            except ClientClosedError as exc:
                caught.append(exc)

        async with anyio.create_task_group() as tg:
            async with client:
                tg.start_soon(submit)
                await entered.wait()
            release.set()
        assert fake.stats.submit_requests == 0
    assert len(caught) == 1
    # The journal closed with the client, so the intent stays: recover() reports it.
    async with FileJournal(tmp_path / "j.jsonl") as reread:
        entry = await reread.get("k1")
    assert entry is not None
    assert entry.task_id is None


async def test_a_caller_cancelled_at_any_step_loses_no_task_and_no_slot(
    manual: FakeRunningHub,
) -> None:
    """Cancel ``run`` after 0, 1, 2, ... loop turns: whatever RunningHub accepted is followed.

    Each cancel lands somewhere else on the way (queued for a slot, preparing, on the
    wire, being tracked, waiting).  Nothing accepted may be lost, nothing unaccepted
    may hold a slot, and every slot comes back once the jobs end.
    """
    ended: set[str] = set()
    async with _client(manual, max_in_flight=2) as client:
        for turns in range(60):
            async with anyio.create_task_group() as tg:

                async def caller() -> None:
                    with contextlib.suppress(RunningHubError):
                        await client.run(T2I, PARAMS)

                tg.start_soon(caller)
                for _ in range(turns):
                    await anyio.lowlevel.checkpoint()
                tg.cancel_scope.cancel()
            # A POST already on the wire goes on without its caller: let it be answered.
            with anyio.fail_after(5):
                while client.statistics().submits_sent != client.statistics().submits_accepted:
                    await anyio.lowlevel.checkpoint()
            accepted = set(manual.tasks) - ended
            stats = client.statistics()
            # Every accepted task is followed (it holds its slot until it ends) ...
            assert stats.outstanding == len(accepted), turns
            assert stats.limiter.in_flight == len(accepted), turns
            # ... and ends like any other: the slot comes back.
            for task_id in accepted:
                manual.finish(task_id)
            for task_id in accepted:
                await client.attach(task_id).wait()
            assert client.statistics().outstanding == 0
            assert client.statistics().limiter.in_flight == 0
            ended |= accepted
    assert ended  # some cancels landed after the submit was accepted


async def test_closing_with_jobs_still_running_says_so_and_they_cannot_be_cancelled_through_it(
    manual: FakeRunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    """Fire-and-forget jobs left at close are logged; a late cancel() does not claim they ended."""
    async with _client(manual) as client:
        jobs = [await client.submit(T2I, PARAMS) for _ in range(3)]
    assert "closed with 3 task(s) not ended" in caplog.text
    assert all(job.task_id in caplog.text for job in jobs)
    with pytest.raises(ClientClosedError, match="not cancelled") as raised:
        await jobs[0].cancel()
    assert tuple(raised.value.task_ids) == (jobs[0].task_id,)
    assert manual.stats.requests_total == manual.stats.submit_requests  # no cancel was sent
