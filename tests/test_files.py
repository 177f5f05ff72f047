"""Uploads, downloads, account and queue status, against the fake (and two tiny file hosts)."""

from __future__ import annotations

import io
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from runninghub_async import (
    APIError,
    FileTooLargeError,
    InvalidParametersError,
    JobResult,
    Output,
    ProtocolError,
    RunningHub,
    TaskStatus,
    UploadedFile,
)
from runninghub_async._downloads import plan_downloads
from runninghub_async.testing import FakeRunningHub, Fault

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE = PNG_SIGNATURE + bytes(range(256)) * 8
OTHER = PNG_SIGNATURE + bytes(range(255, -1, -1)) * 8
T2I = "rhart-image-n-pro/text-to-image"


async def fetch(url: str) -> bytes:
    """The bytes at *url*, fetched with a plain aiohttp session (the reference)."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        return await response.read()


def listing(directory: pathlib.Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# -- uploads ------------------------------------------------------------------------------


async def test_upload_bytes_returns_a_typed_file_the_fake_serves_back(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """upload(bytes) gives an UploadedFile whose URL serves the same bytes."""
    uploaded = await client.upload(IMAGE)
    assert isinstance(uploaded, UploadedFile)
    assert uploaded.size == len(IMAGE)
    assert uploaded.type == "image"
    assert uploaded.file_name.endswith(".png")
    assert fake.uploads[uploaded.file_name] == IMAGE
    assert await fetch(uploaded.download_url) == IMAGE


async def test_upload_of_a_path_and_a_file_object_streams_their_content(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """A Path is sent under its own name; a file object from its current position."""
    path = tmp_path / "photo.png"
    path.write_bytes(IMAGE)
    from_path = await client.upload(path)
    assert fake.uploads[from_path.file_name] == IMAGE
    stream = io.BytesIO(b"junk" + OTHER)
    stream.seek(4)
    from_stream = await client.upload(stream, filename="other.png")
    assert fake.uploads[from_stream.file_name] == OTHER
    assert fake.stats.uploads == 2


class Pipe(io.RawIOBase):
    """A stream that cannot seek and hands out at most 100 bytes per read, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 100))
        buffer[: len(chunk)] = chunk
        return len(chunk)


async def test_unseekable_streams_are_read_up_to_the_limit(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """A pipe-like stream is buffered whole when small, refused unsent when too large."""
    uploaded = await client.upload(io.BufferedReader(Pipe(IMAGE)), filename="piped.png")
    assert fake.uploads[uploaded.file_name] == IMAGE
    with pytest.raises(FileTooLargeError):
        await client.upload(io.BufferedReader(Pipe(IMAGE)), max_bytes=1000)
    with pytest.raises(TypeError, match="binary"):
        await client.upload(io.StringIO("text"))  # type: ignore[arg-type]
    assert fake.stats.requests_total == 1


async def test_same_content_is_uploaded_once_per_client(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """Bytes, a path and a file object with equal content share one upload."""
    path = tmp_path / "same.png"
    path.write_bytes(IMAGE)
    first = await client.upload(IMAGE)
    assert await client.upload(path) == first
    assert await client.upload(io.BytesIO(IMAGE)) == first
    assert fake.stats.uploads == 1
    await client.upload(OTHER)
    assert fake.stats.uploads == 2


async def test_concurrent_uploads_of_the_same_content_share_one_request(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """Five calls at once for the same bytes make one upload; all get its result."""
    fake.add_fault(Fault("slow", route="upload", delay=0.1, times=1))
    results: list[UploadedFile] = []

    async def one() -> None:
        results.append(await client.upload(IMAGE))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
    assert len(set(results)) == 1
    assert len(results) == 5
    assert fake.stats.uploads == 1
    assert fake.stats.requests_total == 1


async def test_a_waiter_takes_over_when_the_uploading_call_is_cancelled(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """Cancelling the call that uploads does not cancel another call waiting for it."""
    fake.add_fault(Fault("slow", route="upload", delay=5.0, times=1))
    first = anyio.CancelScope()
    results: list[UploadedFile] = []

    async def leader() -> None:
        with first:
            await client.upload(IMAGE)

    async def waiter() -> None:
        results.append(await client.upload(IMAGE))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(leader)
            # fake.wait_for is woken only when a request ends, so poll for the stall.
            while fake.stats.faults_injected.get("slow") != 1:  # noqa: ASYNC110
                await anyio.sleep(0.005)
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            first.cancel()
    assert first.cancelled_caught
    assert len(results) == 1
    assert fake.uploads[results[0].file_name] == IMAGE


async def test_upload_is_retried_with_a_fresh_stream(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """A reset upload is sent again from the start of the file; the server gets it whole."""
    path = tmp_path / "retry.png"
    path.write_bytes(IMAGE)
    fake.add_fault(Fault("reset", route="upload", times=1))
    uploaded = await client.upload(path)
    assert fake.uploads[uploaded.file_name] == IMAGE
    assert fake.stats.faults_injected == {"reset": 1}


async def test_upload_over_the_limit_or_empty_sends_nothing(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """Too large or empty content raises before any request."""
    with pytest.raises(FileTooLargeError) as caught:
        await client.upload(IMAGE, max_bytes=100)
    assert caught.value.field == "file"
    assert str(len(IMAGE)) in str(caught.value)
    with pytest.raises(InvalidParametersError, match="empty"):
        await client.upload(b"")
    with pytest.raises(TypeError, match=r"pathlib\.Path"):
        await client.upload("photo.png")  # type: ignore[arg-type]
    assert fake.stats.requests_total == 0


async def test_the_servers_size_verdict_is_a_file_too_large_error(
    make_client: ClientFactory,
) -> None:
    """RunningHub's 809 (file too large) surfaces as FileTooLargeError, not retried."""
    async with FakeRunningHub(upload_max_bytes=1024) as small:
        async with make_client(base_url=small.base_url) as client:
            with pytest.raises(FileTooLargeError):
                await client.upload(IMAGE)
        assert small.stats.requests_total == 1


async def test_edit_uploads_local_inputs_once_and_submits_their_url(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """A Path and bytes with the same content: one upload; both imageUrls are its URL."""
    path = tmp_path / "in.png"
    path.write_bytes(IMAGE)
    result = await client.edit_image("make it blue", [path, IMAGE, "https://example.com/x.png"])
    assert fake.stats.uploads == 1
    (name,) = fake.uploads
    assert fake.uploads[name] == IMAGE
    url = f"{fake.base_url}/files/uploads/{name}"
    assert fake.tasks[result.task_id].params["imageUrls"] == [
        url,
        url,
        "https://example.com/x.png",
    ]
    again = await client.edit_image("now red", [path])
    assert fake.tasks[again.task_id].params["imageUrls"] == [url]
    assert fake.stats.uploads == 1


async def test_edit_whose_upload_fails_submits_nothing(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """If an input cannot be uploaded the error is raised and no job is submitted."""
    fake.add_fault(Fault("http_503", route="upload"))
    with pytest.raises(APIError):
        await client.edit_image("x", [IMAGE])
    assert fake.stats.submit_requests == 0


# -- downloads ------------------------------------------------------------------------------


async def test_download_writes_the_served_png_under_the_task_id(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """The file on disk is byte-for-byte what the fake serves, named <task_id>_0.png."""
    result = await client.text_to_image("a red fox")
    dest = tmp_path / "new" / "dir"
    (path,) = await client.download(result, dest)
    assert path == dest / f"{result.task_id}_0.png"
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert data == await fetch(result.outputs[0].url or "")
    assert listing(dest) == [path.name]
    assert fake.stats.file_requests_with_auth == 0


async def test_a_second_download_never_overwrites(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """Downloading the same result again adds <name>-1.png; the first file is untouched."""
    result = await client.text_to_image("a red fox")
    (first,) = await client.download(result, tmp_path)
    first.write_bytes(b"mine")
    (second,) = await client.download(result, tmp_path)
    assert second.name == f"{result.task_id}_0-1.png"
    assert first.read_bytes() == b"mine"
    assert second.read_bytes().startswith(PNG_SIGNATURE)
    both = await client.download([result, result.outputs[0]], tmp_path)
    assert [p.name for p in both] == [f"{result.task_id}_0-2.png", "0.png"]
    assert fake.stats.file_requests_with_auth == 0


async def test_many_results_download_in_order(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """Several results give one path per output, in the order given, each complete."""
    results = [await client.text_to_image(f"fox {i}") for i in range(6)]
    paths = await client.download(results, tmp_path, concurrency=2)
    assert [p.name for p in paths] == [f"{r.task_id}_0.png" for r in results]
    for result, path in zip(results, paths, strict=True):
        assert path.read_bytes() == await fetch(result.outputs[0].url or "")
    assert not [n for n in listing(tmp_path) if n.endswith(".part")]
    assert fake.stats.file_requests_with_auth == 0


async def test_an_output_url_with_dot_segments_is_saved_inside_dest(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """A hand-made Output whose URL climbs with '..' still lands inside dest_dir."""
    uploaded = await client.upload(IMAGE)
    stem = uploaded.file_name.rpartition("/")[2]
    url = f"{fake.base_url}/files/uploads/openapi/a/b/../../{stem}"
    (path,) = await client.download(Output(url=url, output_type="png"), tmp_path)
    assert path.parent == tmp_path
    assert path.name == stem
    assert path.read_bytes() == IMAGE


def test_hostile_url_names_are_sanitised() -> None:
    """Traversal, absolute paths, backslashes, hidden and reserved names become safe names."""
    base = "https://cdn.example.com/files"
    cases = {
        f"{base}/..%2F..%2Fetc%2Fpasswd": "passwd.png",
        f"{base}/%2Fetc%2Fshadow.png": "shadow.png",
        f"{base}/..%5C..%5Cwin.ini": "win.ini",
        f"{base}/..": "output.png",
        f"{base}/": "files.png",
        f"{base}/.bashrc": "bashrc.png",
        f"{base}/CON.png": "_CON.png",
        f"{base}/a%00b.png": "a_b.png",
        f"{base}/-rf.png": "rf.png",
        f"{base}/ok.jpg?x=/../../y": "ok.jpg",
    }
    plan = plan_downloads([Output(url=url, output_type="png") for url in cases])
    assert [name for _, name in plan] == list(cases.values())
    for _, name in plan:
        assert "/" not in name
        assert "\\" not in name
        assert not name.startswith(".")
    odd = Output(url=base + "/x", output_type="../png")
    result = JobResult("../../1", TaskStatus.SUCCESS, (odd,))
    assert plan_downloads(result) == [(base + "/x", "1_0.bin")]
    with pytest.raises(ValueError, match="http"):
        plan_downloads(Output(url="file:///etc/passwd"))
    with pytest.raises(TypeError):
        plan_downloads("https://example.com/a.png")  # type: ignore[arg-type]


@asynccontextmanager
async def file_host(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """A one-route file host on 127.0.0.1 serving every path with *handler*."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        with anyio.move_on_after(5, shield=True):
            await runner.cleanup()


async def test_hostile_names_from_a_real_host_stay_inside_dest(
    client: RunningHub, tmp_path: pathlib.Path
) -> None:
    """Files whose URL names try to escape are written inside dest_dir, never elsewhere."""

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=IMAGE, content_type="image/png")

    dest = tmp_path / "dest"
    async with file_host(serve) as host:
        outputs = [
            Output(url=f"{host}/x/..%2F..%2Fescape.png"),
            Output(url=f"{host}/x/%2Ftmp%2Fabsolute.png"),
            Output(url=f"{host}/x/..%5C..%5Cback.png"),
        ]
        paths = await client.download(outputs, dest)
    assert [p.name for p in paths] == ["escape.png", "absolute.png", "back.png"]
    assert listing(dest) == sorted(p.name for p in paths)
    assert listing(tmp_path) == ["dest"]
    for path in paths:
        assert path.read_bytes() == IMAGE


@pytest.mark.parametrize("kind", ["reset", "http_503"])
async def test_a_failed_download_leaves_nothing(
    kind: str, client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """A reset or an HTTP error raises, and neither the file nor a .part is left."""
    result = await client.text_to_image("a red fox")
    fake.add_fault(Fault(kind, route="download"))
    with pytest.raises((ProtocolError, APIError)):
        await client.download(result, tmp_path)
    assert listing(tmp_path) == []


async def test_a_cancelled_slow_download_leaves_nothing(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """Cancelling while the file host stalls leaves no file and no .part."""
    result = await client.text_to_image("a red fox")
    fake.add_fault(Fault("slow", route="download", delay=5.0))
    with anyio.move_on_after(0.2) as scope:
        await client.download(result, tmp_path)
    assert scope.cancelled_caught
    assert listing(tmp_path) == []


@pytest.mark.parametrize("how", ["cancel", "drop"])
async def test_a_download_interrupted_mid_file_removes_its_part(
    how: str, client: RunningHub, tmp_path: pathlib.Path
) -> None:
    """Cancelled or cut off after the first bytes were written: the .part is deleted."""
    sent_first = anyio.Event()

    async def serve(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.content_length = 10 * len(IMAGE)
        await response.prepare(request)
        await response.write(IMAGE)
        sent_first.set()
        if how == "drop":
            await anyio.sleep(0.05)
            assert request.transport is not None
            request.transport.close()
        else:
            await anyio.sleep(30)
        return response

    async with file_host(serve) as host:
        output = Output(url=f"{host}/big.png")
        if how == "drop":
            with pytest.raises(ProtocolError):
                await client.download(output, tmp_path)
        else:
            with anyio.fail_after(5), anyio.CancelScope() as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(client.download, output, tmp_path)
                    await sent_first.wait()
                    while listing(tmp_path) != ["big.png.part"]:  # noqa: ASYNC110
                        await anyio.sleep(0.005)
                    scope.cancel()
    assert listing(tmp_path) == []


async def test_one_failing_download_cancels_the_rest_and_cleans_up(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """A 404 among good URLs raises, and no .part of any download is left."""
    result = await client.text_to_image("a red fox")
    missing = Output(url=f"{fake.base_url}/files/outputs/{result.task_id}/9.png")
    with pytest.raises(APIError) as caught:
        await client.download([result, missing, result], tmp_path, concurrency=3)
    assert caught.value.http_status == 404
    assert not [n for n in listing(tmp_path) if n.endswith(".part")]
    with pytest.raises(ValueError, match="concurrency"):
        await client.download(result, tmp_path, concurrency=0)


async def test_outputs_without_url_are_skipped(client: RunningHub, tmp_path: pathlib.Path) -> None:
    """Text outputs have no file: nothing is downloaded for them."""
    result = JobResult("1", TaskStatus.SUCCESS, (Output(text="a caption"),))
    assert await client.download(result, tmp_path) == []


# -- account and queue status ---------------------------------------------------------


async def test_account_parses_strings_into_decimal_and_int(make_client: ClientFactory) -> None:
    """accountStatus's string values become Decimal money, int counts, currency, key type."""
    async with FakeRunningHub(
        duration=None, currency="USD", remain_money="12.345", remain_coins="777"
    ) as fake:
        async with make_client(base_url=fake.base_url) as client:
            await client.submit(T2I, {"prompt": "x", "resolution": "1k"})
            account = await client.account()
    assert account.remain_money == Decimal("12.345")
    assert isinstance(account.remain_money, Decimal)
    assert account.remain_coins == 777
    assert account.current_task_counts == 1
    assert account.currency == "USD"
    assert account.api_type == "SHARED"


async def test_queue_status_parses_the_limit_and_counts(make_client: ClientFactory) -> None:
    """queue/status gives the key's concurrency limit and its running/queued counts as ints."""
    async with FakeRunningHub(duration=None, concurrency_limit=3, queue_time=None) as fake:
        async with make_client(base_url=fake.base_url) as client:
            await client.submit(T2I, {"prompt": "x", "resolution": "1k"})
            await client.submit(T2I, {"prompt": "y", "resolution": "1k"})
            status = await client.queue_status()
    assert status.concurrent_limit == 3
    assert status.queued_count == 2
    assert status.running_count == 0
    assert status.total_current_tasks == 2
    assert status.api_key_type == "SHARED"
