"""Servers that lie, stall, flood or redirect: every promise of the client still holds."""

from __future__ import annotations

import gzip
import json
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
from aiohttp import web

from runninghub_async import (
    APIError,
    ConcurrencyLimitError,
    JobTimeoutError,
    Output,
    PollPolicy,
    ProtocolError,
    RequestTimeoutError,
    RetryPolicy,
    RunningHub,
    SubmitOutcomeUnknownError,
    TaskFailedError,
    TaskNotFoundError,
    Timeouts,
)
from runninghub_async._errors import UnexpectedContentError

from . import hostile
from .hostile import KEY, Recorder, serve, success_body, task_body

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
PARAMS = {"prompt": "a hostile sea", "resolution": "1k"}
TIGHT = Timeouts(connect=1.0, read=1.0, total=0.5, max_response_bytes=64 * 1024)
NO_RETRY = RetryPolicy(attempts=1, initial=0.01, maximum=0.01)
LOOSE = Timeouts(connect=1.0, read=60.0, total=60.0)


def _checks_within(seconds: float) -> PollPolicy:
    """Fast checks, each bounded by *seconds*."""
    return PollPolicy(
        typical_duration=0.01,
        target_delay=0.01,
        min_interval=0.01,
        max_interval=0.05,
        check_timeout=seconds,
    )


def client_for(base_url: str, **overrides: object) -> RunningHub:
    """`hostile.client_for` with tight timeouts (the servers here stall on purpose)."""
    return hostile.client_for(base_url, **{"timeouts": TIGHT, **overrides})


async def _drip(request: web.Request) -> web.StreamResponse:
    """An answer that never stops arriving: one byte at a time, forever."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    while True:
        await response.write(b" ")
        await anyio.sleep(0.05)


async def _accept(request: web.Request) -> web.Response:
    return task_body("1001", "RUNNING")


@pytest.fixture
async def dripping() -> AsyncIterator[str]:
    """Submits accepted; every query answer drips forever."""
    async with serve({("POST", "/openapi/v2/{tail:.*}"): _accept}) as base:
        yield base


async def test_a_dripping_answer_cannot_hold_a_query_past_the_total_deadline() -> None:
    """The read timeout sees activity; the total deadline still ends the exchange."""
    async with serve({("POST", "/openapi/v2/query"): _drip}) as base:
        async with client_for(base, retry=NO_RETRY) as client:
            with anyio.fail_after(5):
                with pytest.raises(RequestTimeoutError):
                    await client.query("1001")


async def test_the_job_deadline_ends_a_wait_while_a_check_is_stuck() -> None:
    """job_timeout ends the wait though the only check in flight never answers."""
    routes = {("POST", "/openapi/v2/query"): _drip, ("POST", "/openapi/v2/{tail:.*}"): _accept}
    async with serve(routes) as base:
        async with client_for(
            base, job_timeout=0.4, poll=_checks_within(30.0), timeouts=LOOSE, validate=False
        ) as client:
            job = await client.submit(T2I, PARAMS)
            with anyio.fail_after(5):
                with pytest.raises(JobTimeoutError) as caught:
                    await job.wait()
    assert caught.value.task_id == "1001"


async def test_a_check_the_server_stalls_is_abandoned_after_check_timeout() -> None:
    """The first check never answers; check_timeout ends it and the next check succeeds."""
    queries = 0
    stall = anyio.Event()

    async def query(request: web.Request) -> web.StreamResponse:
        nonlocal queries
        queries += 1
        if queries == 1:
            await stall.wait()  # set only once the client is gone: the server holds it
        return success_body("1001", "https://cdn.example/1.png")

    routes = {("POST", "/openapi/v2/query"): query, ("POST", "/openapi/v2/{tail:.*}"): _accept}
    async with serve(routes) as base:
        async with client_for(
            base, poll=_checks_within(0.2), timeouts=LOOSE, validate=False
        ) as client:
            with anyio.fail_after(5):
                result = await client.run(T2I, PARAMS)
            stats = client.statistics()
        stall.set()
    assert result.task_id == "1001"
    assert queries == 2
    assert stats.poller.query_failures == 1


async def test_huge_and_bomb_answers_are_refused_without_holding_them() -> None:
    """A 5 MB answer and a gzip bomb end in ProtocolError, read up to the cap only."""
    huge = json.dumps({"taskId": "1", "status": "RUNNING", "pad": "x" * 5_000_000}).encode()
    bomb = gzip.compress(b'{"taskId":"1","status":"RUNNING","pad":"' + b"0" * 50_000_000 + b'"}')

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=huge, content_type="application/json")

    async def zipped(request: web.Request) -> web.Response:
        return web.Response(
            body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )

    routes = {("POST", "/openapi/v2/query"): big, ("GET", "/openapi/v2/queue/status"): zipped}
    async with serve(routes) as base:
        async with client_for(base, retry=NO_RETRY) as client:
            with pytest.raises(ProtocolError, match="larger than"):
                await client.query("1")
            with pytest.raises(ProtocolError, match="larger than"):
                await client.queue_status()


async def test_deeply_nested_json_is_a_protocol_error_not_a_crash() -> None:
    """Nesting that would blow the recursion limit is refused, here and in webhooks."""
    deep = b"[" * 100_000 + b"]" * 100_000

    async def nested(request: web.Request) -> web.Response:
        return web.Response(body=deep, content_type="application/json")

    async with serve({("POST", "/openapi/v2/query"): nested}) as base:
        async with client_for(
            base, retry=NO_RETRY, timeouts=Timeouts(max_response_bytes=1 << 20)
        ) as client:
            with pytest.raises(ProtocolError):
                await client.query("1")
            with pytest.raises(ValueError, match="JSON"):
                client.handle_webhook(deep)


async def test_nesting_inside_a_task_answer_is_a_protocol_error() -> None:
    """Parseable but deep (500 levels) in a query's results or a submit's error message."""
    deep: object = "x"
    for _ in range(500):
        deep = [deep]

    async def query(request: web.Request) -> web.Response:
        body = {"taskId": "1", "status": "SUCCESS", "errorCode": "", "results": [{"url": deep}]}
        return web.json_response(body)

    async def submit(request: web.Request) -> web.Response:
        return web.json_response({"errorCode": "1001", "errorMessage": deep, "status": deep})

    routes = {("POST", "/openapi/v2/query"): query, ("POST", "/openapi/v2/{tail:.*}"): submit}
    async with serve(routes) as base:
        async with client_for(base, retry=NO_RETRY) as client:
            with pytest.raises(ProtocolError, match="nested deeper"):
                await client.query("1")
            with pytest.raises(APIError) as caught:
                await client.submit(T2I, PARAMS)
            assert "<list>" in str(caught.value)


async def test_a_redirect_loop_on_submit_is_an_unknown_outcome_sent_once() -> None:
    """A 307 to itself: the paid POST is sent once and the outcome is unknown."""
    seen = Recorder()

    async def loop(request: web.Request) -> web.Response:
        seen.hit(request)
        raise web.HTTPTemporaryRedirect(location=str(request.url))

    async def query(request: web.Request) -> web.Response:
        seen.hit(request)
        raise web.HTTPTemporaryRedirect(location=str(request.url))

    routes = {("POST", "/openapi/v2/query"): query, ("POST", "/openapi/v2/{tail:.*}"): loop}
    async with serve(routes) as base:
        async with client_for(base, retry=NO_RETRY) as client:
            with pytest.raises(SubmitOutcomeUnknownError):
                await client.submit(T2I, PARAMS)
            with pytest.raises(ProtocolError, match="redirect"):
                await client.query("1")
    assert seen.calls[f"/openapi/v2/{T2I}"] == 1


async def test_short_error_bodies_are_understood() -> None:
    """{"errorCode": "421", ...} is absorbed and resent; a short 1004 is 'not found'."""
    posts = Recorder()

    async def submit(request: web.Request) -> web.Response:
        posts.hit(request)
        if posts.calls[request.path] == 1:
            return web.json_response({"errorCode": "421", "errorMessage": "queue limit"})
        return task_body("2002", "QUEUED")

    async def query(request: web.Request) -> web.Response:
        return web.json_response({"errorCode": "1004", "errorMessage": "Task not found"})

    routes = {("POST", "/openapi/v2/query"): query, ("POST", "/openapi/v2/{tail:.*}"): submit}
    async with serve(routes) as base:
        async with client_for(base) as client:
            job = await client.submit(T2I, PARAMS)
            with pytest.raises(TaskNotFoundError):
                await client.query("2002")
    assert job.task_id == "2002"
    assert posts.calls[f"/openapi/v2/{T2I}"] == 2


async def test_a_legacy_envelope_error_maps_to_the_same_classes() -> None:
    """{"code": 421, "msg": ...} from a legacy route is a ConcurrencyLimitError."""

    async def legacy(request: web.Request) -> web.Response:
        return web.json_response({"code": 421, "msg": "TASK_QUEUE_MAXED", "data": None})

    async with serve({("POST", "/task/openapi/status"): legacy}) as base:
        async with client_for(base, retry=NO_RETRY) as client:
            with pytest.raises(ConcurrencyLimitError):
                await client.request("POST", "/task/openapi/status", {"taskId": "1"})


async def test_an_html_page_is_never_saved_as_an_image(tmp_path: Path) -> None:
    """A login page served with 200 for a .png: a typed error and no file left behind."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><html>login</html>", content_type="text/html")

    async with serve({("GET", "/files/out.png"): page}) as base:
        async with client_for(base) as client:
            output = Output(url=f"{base}/files/out.png", output_type="png")
            with pytest.raises(UnexpectedContentError):
                await client.download(output, tmp_path)
            with pytest.raises(UnexpectedContentError):
                await client.read(output)
    assert not await anyio.Path(tmp_path).exists() or [
        p async for p in anyio.Path(tmp_path).iterdir()
    ] == []


@pytest.mark.parametrize("spelling", [str, str.upper], ids=["as-is", "upper-cased"])
async def test_the_key_never_leaks_through_what_the_server_echoes(
    spelling: Callable[[str], str],
) -> None:
    """A server echoing the key in messages and reasons: no exception text carries it."""
    echo = spelling(KEY)

    async def submit(request: web.Request) -> web.Response:
        return web.json_response({"errorCode": "1007", "errorMessage": f"bad key {echo}"})

    async def query(request: web.Request) -> web.Response:
        body = {
            "taskId": "7",
            "status": "FAILED",
            "errorCode": "1015",
            "errorMessage": f"failed for Bearer {echo}",
            "failedReason": {"exception_message": echo},
        }
        return web.json_response(body, status=200, reason=f"OK {echo}")

    routes = {("POST", "/openapi/v2/query"): query, ("POST", "/openapi/v2/{tail:.*}"): submit}
    async with serve(routes) as base:
        async with client_for(base, validate=False) as client:
            with pytest.raises(APIError) as refused:
                await client.submit(T2I, PARAMS)
            job = client.attach("7")
            with pytest.raises(TaskFailedError) as failed:
                await job.wait()
    for exc in (refused.value, failed.value):
        text = "".join(traceback.format_exception(exc)) + repr(vars(exc))
        assert KEY.lower() not in text.lower()


async def test_a_rate_storm_slows_the_client_and_ends_in_successes() -> None:
    """A server answering 1003 to 60% of queries for a while: every job still succeeds."""
    state = {"calls": 0}

    async def submit(request: web.Request) -> web.Response:
        return task_body(str(3000 + state["calls"]), "RUNNING")

    async def query(request: web.Request) -> web.Response:
        state["calls"] += 1
        if state["calls"] < 60 and state["calls"] % 5 < 3:
            return web.json_response(
                {"errorCode": "1003", "errorMessage": "rate limited"}, headers={"Retry-After": "0"}
            )
        task_id = (await request.json())["taskId"]
        return success_body(task_id, "https://cdn.example/x.png")

    routes = {("POST", "/openapi/v2/query"): query, ("POST", "/openapi/v2/{tail:.*}"): submit}
    async with serve(routes) as base:
        async with client_for(base, requests_per_second=200.0, validate=False) as client:
            jobs = []
            for _ in range(5):
                state["calls"] += 1
                jobs.append(await client.submit(T2I, PARAMS))
            with anyio.fail_after(20):
                results = [await job.wait() for job in jobs]
            throttled = client.statistics().limiter.rejections_absorbed
    assert all(r.outputs for r in results)
    assert throttled > 0


@pytest.mark.parametrize("task_id", ["../../etc/x", "12 34", "١٢٣", "9" * 41])
async def test_a_submit_answered_with_a_task_id_that_is_not_one_is_an_unknown_outcome(
    task_id: str,
) -> None:
    """Ids go into file names and journal keys: a lying one is never followed or used."""

    async def accept(request: web.Request) -> web.Response:
        return task_body(task_id, "QUEUED")

    async with serve({("POST", f"/openapi/v2/{T2I}"): accept}) as base:
        async with client_for(base, max_in_flight=1) as client:
            with pytest.raises(SubmitOutcomeUnknownError) as raised:
                await client.submit(T2I, PARAMS)
            assert "taskId" in str(raised.value)
            stats = client.statistics()
            assert stats.outstanding == 0
            assert stats.limiter.in_flight == 0  # the slot came back


async def test_a_query_answered_about_another_task_does_not_end_the_job() -> None:
    """A misrouted answer (another task's SUCCESS) fails the check; the job's own one ends it."""
    queries = 0

    async def accept(request: web.Request) -> web.Response:
        return task_body("1001", "QUEUED")

    async def query(request: web.Request) -> web.Response:
        nonlocal queries
        queries += 1
        if queries == 1:
            return success_body("2002", "https://cdn.example/someone-elses.png")
        return success_body("1001", "https://cdn.example/mine.png")

    routes = {("POST", f"/openapi/v2/{T2I}"): accept, ("POST", "/openapi/v2/query"): query}
    async with serve(routes) as base:
        async with client_for(base) as client:
            result = await client.run(T2I, PARAMS)
    assert result.task_id == "1001"
    assert [o.url for o in result.outputs] == ["https://cdn.example/mine.png"]
    assert queries == 2


@pytest.mark.parametrize("task_id", ["١٢٣", "²³", "../1", ""])
async def test_task_ids_given_by_hand_must_be_ascii_digits(task_id: str) -> None:
    async with serve({}) as base:
        async with client_for(base) as client:
            with pytest.raises(ValueError, match="not a RunningHub task id"):
                await client.query(task_id)


@pytest.mark.parametrize("money", ["-5", "NaN", "sNaN", "1e309", "1e999999999", "Infinity", "abc"])
async def test_an_absurd_cost_is_dropped_and_the_result_still_arrives(money: str) -> None:
    """A cost field that is no plausible amount is None; the outputs and the wait are unharmed."""

    async def accept(request: web.Request) -> web.Response:
        return task_body("1001", "QUEUED")

    async def query(request: web.Request) -> web.Response:
        return task_body(
            "1001",
            "SUCCESS",
            results=[{"url": "https://cdn.example/1.png", "outputType": "png"}],
            usage={"consumeMoney": money, "consumeCoins": money, "taskCostTime": money},
        )

    routes = {("POST", f"/openapi/v2/{T2I}"): accept, ("POST", "/openapi/v2/query"): query}
    async with serve(routes) as base:
        async with client_for(base) as client:
            with anyio.fail_after(5):
                result = await client.run(T2I, PARAMS)
            assert result.usage is not None
            assert result.usage.consume_money is None
            assert result.usage.consume_coins is None
            assert result.usage.task_cost_time is None
            assert [o.url for o in result.outputs] == ["https://cdn.example/1.png"]
            assert client.statistics().cost == 0


async def test_a_submit_lost_on_the_wire_after_its_caller_left_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The caller leaves; RunningHub takes the task, then the connection drops: it is said."""
    arrived, caller_gone = anyio.Event(), anyio.Event()

    async def accept_then_drop(request: web.Request) -> web.Response:
        await request.read()
        arrived.set()  # RunningHub has the task (and bills it) from here on
        await caller_gone.wait()
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    async with serve({("POST", f"/openapi/v2/{T2I}"): accept_then_drop}) as base:
        async with client_for(base) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.submit, T2I, PARAMS)
                await arrived.wait()
                tg.cancel_scope.cancel()
            caller_gone.set()
            with anyio.fail_after(5):
                while client.statistics().submits_unknown == 0:
                    await anyio.lowlevel.checkpoint()
            stats = client.statistics()
            assert (stats.submits_sent, stats.submits_accepted, stats.orphaned) == (1, 0, ())
            assert stats.limiter.in_flight == 0
    assert "may have created a task this client does not follow" in caplog.text


async def test_a_submit_without_an_answer_counts_as_unknown_for_its_caller_too() -> None:
    async def drop(request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    async with serve({("POST", f"/openapi/v2/{T2I}"): drop}) as base:
        async with client_for(base) as client:
            with pytest.raises(SubmitOutcomeUnknownError):
                await client.submit(T2I, PARAMS)
            assert client.statistics().submits_unknown == 1


async def test_an_ended_task_whose_answer_cannot_be_read_ends_its_job_at_once() -> None:
    """A SUCCESS with malformed results is not checked until the deadline, nor cancelled."""
    queries, cancels = 0, 0

    async def accept(request: web.Request) -> web.Response:
        return task_body("1001", "RUNNING")

    async def query(request: web.Request) -> web.Response:
        nonlocal queries
        queries += 1
        return task_body("1001", "SUCCESS", results={"url": "https://cdn.example/1.png"})

    async def cancel(request: web.Request) -> web.Response:
        nonlocal cancels
        cancels += 1
        return web.json_response({"code": 0, "msg": "success", "data": None})

    routes = {
        ("POST", f"/openapi/v2/{T2I}"): accept,
        ("POST", "/openapi/v2/query"): query,
        ("POST", "/task/openapi/cancel"): cancel,
    }
    async with serve(routes) as base:
        async with client_for(base, job_timeout=60) as client:
            with anyio.fail_after(5), pytest.raises(ProtocolError) as raised:
                await client.run(T2I, PARAMS)
    assert raised.value.task_ended
    assert "ended (SUCCESS)" in str(raised.value)
    assert (queries, cancels) == (1, 0)
