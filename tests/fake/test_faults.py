"""Fault injection: 5xx, reset, slow, malformed JSON, drop after accept, and scheduling."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from runninghub_async.testing import FakeRunningHub, Fault

from ._support import GOOD, T2I, bearer, query, submit

pytestmark = pytest.mark.anyio

_DISCONNECTED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


async def _status_of_query(http: aiohttp.ClientSession, fake: FakeRunningHub) -> int:
    url = f"{fake.base_url}/openapi/v2/query"
    async with http.post(url, json={"taskId": "1"}, headers=bearer(fake.api_key)) as response:
        await response.read()
        return response.status


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_http_error_fault_answers_an_nginx_page_and_creates_nothing(status: int) -> None:
    """An http_5xx fault on submit answers that status with an HTML body; no task is created."""
    fault = Fault(f"http_{status}", route="submit")
    async with FakeRunningHub(faults=[fault]) as fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/openapi/v2/{T2I}"
        async with http.post(url, json=GOOD, headers=bearer(fake.api_key)) as response:
            assert response.status == status
            assert response.content_type == "text/html"
            assert "nginx" in await response.text()
        assert len(fake.tasks) == 0
        assert fake.stats.faults_injected == {f"http_{status}": 1}


async def test_reset_fault_drops_the_connection_before_answering() -> None:
    """A reset fault makes the client see a disconnect (no hang) and creates no task."""
    fault = Fault("reset", route="submit", times=1)
    fake = FakeRunningHub(faults=[fault], duration=None)
    async with fake, aiohttp.ClientSession() as http:
        with pytest.raises(_DISCONNECTED):
            await submit(http, fake)
        assert len(fake.tasks) == 0
        assert (await submit(http, fake))["errorCode"] == ""
    assert fake.stats.faults_injected == {"reset": 1}
    assert fake.stats.accepted_tasks == 1


async def test_slow_fault_delays_then_answers_normally() -> None:
    """A slow fault answers normally after at least its delay."""
    fault = Fault("slow", route="query", delay=0.2)
    fake = FakeRunningHub(faults=[fault], duration=None)
    async with fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        started = time.monotonic()
        answer = await query(http, fake, task_id)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.2
    assert answer["status"] == "RUNNING"


async def test_slow_submit_still_creates_its_task_when_the_client_gives_up() -> None:
    """A slow submit takes effect at once: a client timeout leaves exactly one task behind."""
    fault = Fault("slow", route="submit", delay=5.0)
    fake = FakeRunningHub(faults=[fault], duration=None)
    async with fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/openapi/v2/{T2I}"
        with pytest.raises(TimeoutError):
            await http.post(
                url, json=GOOD, headers=bearer(fake.api_key), timeout=aiohttp.ClientTimeout(0.1)
            )
        assert len(fake.tasks) == 1
        assert fake.stats.accepted_tasks == 1


async def test_malformed_json_fault_truncates_a_real_answer() -> None:
    """malformed_json answers 200 application/json that does not parse; the submit did happen."""
    fault = Fault("malformed_json", route="submit", times=1)
    fake = FakeRunningHub(faults=[fault], duration=None)
    async with fake, aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/openapi/v2/{T2I}"
        async with http.post(url, json=GOOD, headers=bearer(fake.api_key)) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            text = await response.text()
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        assert text.startswith('{"taskId": "')
        assert len(fake.tasks) == 1


async def test_drop_after_accept_creates_exactly_one_task_and_disconnects() -> None:
    """drop_after_accept: the client sees a disconnect, yet exactly one task exists and runs."""
    async with FakeRunningHub(duration=None) as fake, aiohttp.ClientSession() as http:
        fake.add_fault(Fault("drop_after_accept", times=1))
        with pytest.raises(_DISCONNECTED):
            await submit(http, fake)
        assert len(fake.tasks) == 1
        (task_id,) = fake.tasks
        assert fake.tasks[task_id].status == "RUNNING"
        fake.finish(task_id)
        assert (await query(http, fake, task_id))["status"] == "SUCCESS"
        assert fake.stats.faults_injected == {"drop_after_accept": 1}


async def test_after_and_times_schedule_the_fault() -> None:
    """after=1, times=2: the 1st matching request passes, the next two fail, the rest pass."""
    fault = Fault("http_503", route="query", after=1, times=2)
    async with FakeRunningHub(faults=[fault]) as fake, aiohttp.ClientSession() as http:
        statuses = [await _status_of_query(http, fake) for _ in range(5)]
    assert statuses == [200, 503, 503, 200, 200]


async def test_probability_is_seeded_and_partial() -> None:
    """probability=0.5 fails some requests but not all, identically for the same seed."""

    async def pattern() -> list[int]:
        fault = Fault("http_500", route="query", probability=0.5)
        fake = FakeRunningHub(faults=[fault], seed=11)
        async with fake, aiohttp.ClientSession() as http:
            return [await _status_of_query(http, fake) for _ in range(30)]

    first, second = await pattern(), await pattern()
    assert first == second
    assert 0 < first.count(500) < 30


async def test_probability_zero_never_fires() -> None:
    """A fault with probability 0 never fires."""
    fault = Fault("http_500", probability=0.0)
    async with FakeRunningHub(faults=[fault]) as fake, aiohttp.ClientSession() as http:
        statuses = [await _status_of_query(http, fake) for _ in range(5)]
    assert statuses == [200] * 5


async def test_faults_only_hit_their_route() -> None:
    """A fault on uploads leaves queries and submits alone."""
    fault = Fault("http_502", route="upload")
    fake = FakeRunningHub(faults=[fault], duration=None)
    async with fake, aiohttp.ClientSession() as http:
        assert await _status_of_query(http, fake) == 200
        assert (await submit(http, fake))["errorCode"] == ""
        url = f"{fake.base_url}/openapi/v2/media/upload/binary"
        form = aiohttp.FormData()
        form.add_field("file", b"\x89PNG\r\n\x1a\nxx", filename="a.png")
        async with http.post(url, data=form, headers=bearer(fake.api_key)) as response:
            assert response.status == 502


@pytest.mark.parametrize(
    ("route", "method", "path"),
    [
        ("download", "GET", "/files/uploads/openapi/x.png"),
        ("account", "POST", "/uc/openapi/accountStatus"),
        ("queue_status", "GET", "/openapi/v2/queue/status"),
        ("cancel", "POST", "/task/openapi/cancel"),
    ],
)
async def test_each_named_route_can_fault(route: str, method: str, path: str) -> None:
    """Faults apply to downloads, account, queue/status and cancel by their route names."""
    fault = Fault("http_500", route=route)
    async with FakeRunningHub(faults=[fault]) as fake, aiohttp.ClientSession() as http:
        async with http.request(method, fake.base_url + path, json={}) as response:
            assert response.status == 500
        assert await _status_of_query(http, fake) == 200


async def test_faults_do_not_apply_to_the_control_api() -> None:
    """A fault on 'any' route leaves /_fake/ routes working."""
    async with FakeRunningHub(faults=[Fault("http_500")]) as fake, aiohttp.ClientSession() as http:
        async with http.get(f"{fake.base_url}/_fake/stats") as response:
            assert response.status == 200
        assert await _status_of_query(http, fake) == 500
        fake.clear_faults()
        assert await _status_of_query(http, fake) == 200
        assert fake.faults == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "teapot"},
        {"kind": "http_500", "route": "nowhere"},
        {"kind": "http_500", "probability": 1.5},
        {"kind": "http_500", "times": -1},
        {"kind": "slow", "delay": -1.0},
        {"kind": "http_500", "after": -2},
        {"kind": "drop_after_accept", "route": "query"},
    ],
)
def test_bad_faults_are_rejected(kwargs: dict[str, object]) -> None:
    """A Fault with an unknown kind/route or an out-of-range number raises ValueError."""
    with pytest.raises(ValueError):  # noqa: PT011 - attrs validators raise plain ValueError
        Fault(**kwargs)  # type: ignore[arg-type]


async def test_malformed_fault_on_a_download_truncates_the_file() -> None:
    """malformed_json on a download serves a cut-short PNG with HTTP 200."""
    fake = FakeRunningHub(duration=None)
    async with fake, aiohttp.ClientSession() as http:
        task_id = (await submit(http, fake))["taskId"]
        fake.finish(task_id)
        url = (await query(http, fake, task_id))["results"][0]["url"]
        async with http.get(url) as response:
            whole = await response.read()
        fake.add_fault(Fault("malformed_json", route="download", times=1))
        async with http.get(url) as response:
            assert response.status == 200
            cut = await response.read()
    assert 0 < len(cut) < len(whole)
    assert whole.startswith(cut)
