"""Bad input gets a clear error in the caller's task, before any request, and hurts no one else."""

from __future__ import annotations

import math
import pathlib
import traceback
from decimal import Decimal
from typing import Any

import anyio
import pytest

from runninghub_async import (
    AuthenticationError,
    InvalidParametersError,
    NodeInput,
    PollPolicy,
    RunningHub,
    TaskFailedError,
    Timeouts,
)
from runninghub_async.testing import FakeRunningHub

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio

T2I = "rhart-image-n-pro/text-to-image"
GOOD = {"prompt": "a calm lake", "resolution": "1k"}
RAW = "some/uncatalogued-model"
WAN = "alibaba/wan-2.5-preview/text-to-image"


@pytest.mark.parametrize(
    ("endpoint", "params", "error"),
    [
        (RAW, {"prompt": {1, 2}}, InvalidParametersError),
        (RAW, {"prompt": Decimal("1.5")}, InvalidParametersError),
        (RAW, {"image": pathlib.Path("x.png")}, InvalidParametersError),
        (RAW, {"strength": math.nan}, InvalidParametersError),
        (RAW, {"strength": math.inf}, InvalidParametersError),
        (RAW, {1: "x"}, InvalidParametersError),
        (None, GOOD, TypeError),
        (123, GOOD, TypeError),
        ("../../uc/openapi/accountStatus", GOOD, InvalidParametersError),
        ("%2e%2e/uc/openapi/accountStatus", GOOD, InvalidParametersError),
        ("rhart-image-n-pro/text-to-image\r\nX: 1", GOOD, InvalidParametersError),
        ("https://evil.example/x", GOOD, InvalidParametersError),
        ("rhart-image-n-pro/text-to-image?x=1", GOOD, InvalidParametersError),
        (T2I, {"prompt": "x", "aspect_ratio": "16:9"}, InvalidParametersError),
        (T2I, {"prompt": "x", "aspectRatio": None, "resolution": "9k"}, InvalidParametersError),
        ("nano-banana-pro/text-to-imag", GOOD, InvalidParametersError),
        (T2I, ["prompt"], TypeError),
        (WAN, {"prompt": "x", "size": "1280*1280", "seed": 10**400}, InvalidParametersError),
        (WAN, {"prompt": "x", "size": "1280*1280", "seed": 2**63}, InvalidParametersError),
    ],
)
async def test_bad_submits_fail_before_any_request(
    endpoint: Any,
    params: Any,
    error: type[Exception],
    fake: FakeRunningHub,
    make_client: ClientFactory,
) -> None:
    """Each is refused in the caller's task; the fake sees nothing; the client lives on."""
    async with make_client(validate=True) as client:
        before = fake.stats.requests_total
        with pytest.raises(error):
            await client.submit(endpoint, params)
        assert fake.stats.requests_total == before
        assert (await client.run(T2I, GOOD)).outputs  # the shared client still works


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"webhook_url": "ftp://example.com/hook"}, InvalidParametersError),
        ({"webhook_url": "https://example.com/x\r\nX-Injected: 1"}, InvalidParametersError),
        ({"webhook_url": "https://user:pw@example.com/hook"}, InvalidParametersError),
        ({"webhook_url": "/relative/hook"}, InvalidParametersError),
        ({"webhook_url": b"https://example.com/hook"}, TypeError),
        ({"key": 123}, TypeError),
        ({"key": ""}, TypeError),
    ],
)
async def test_bad_submit_options_fail_before_any_upload_or_request(
    options: dict[str, Any],
    error: type[Exception],
    fake: FakeRunningHub,
    make_client: ClientFactory,
    tmp_path: pathlib.Path,
) -> None:
    """A bad per-call webhook URL or journal key is refused before the local image is uploaded."""
    image = tmp_path / "in.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    params = {"prompt": "x", "imageUrls": [image], "resolution": "1k"}
    async with make_client() as client:
        before = fake.stats.requests_total
        with pytest.raises(error):
            await client.submit("rhart-image-n-pro/edit", params, **options)
        assert fake.stats.requests_total == before


def _contains_itself() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("a lone \ud800 surrogate", "has text with a lone surrogate"),
        (_contains_itself(), "contains itself"),
        (_deep(100_000), "is nested too deeply"),
        ([1.0, math.inf], "is or holds a NaN or infinite number"),
        pytest.param(10**5000, "is or holds an integer too large to send", id="huge-int"),
        (["ok", {1, 2}], "holds a value JSON cannot carry"),
        ({1, 2}, "is a set"),
    ],
)
async def test_a_value_json_cannot_carry_is_named_with_the_reason(
    value: Any, why: str, fake: FakeRunningHub, make_client: ClientFactory
) -> None:
    """The error names the field and says why, for submit and price, before any request."""
    async with make_client(validate=False) as client:
        before = fake.stats.requests_total
        with pytest.raises(InvalidParametersError, match=f"prompt {why}") as raised:
            await client.submit(RAW, {"prompt": value})
        assert raised.value.field == "prompt"
        with pytest.raises(InvalidParametersError, match="params"):
            await client.price(RAW, {"prompt": value})
        assert fake.stats.requests_total == before


async def test_an_unknown_model_names_the_closest_ones(client: RunningHub) -> None:
    """A typo of a model name says which names are close."""
    with pytest.raises(InvalidParametersError) as caught:
        await client.submit("nano-banana-pro/text-to-imag", GOOD)
    assert caught.value.field == "endpoint"
    assert "text-to-image" in (caught.value.allowed or "")


async def test_one_bad_request_does_not_disturb_other_callers(
    fake: FakeRunningHub, client: RunningHub
) -> None:
    """A web app's bad request body fails alone; concurrent jobs finish; the client lives on."""
    results: list[object] = []

    async def good(i: int) -> None:
        results.append(await client.run(T2I, {**GOOD, "prompt": f"good {i}"}))

    async def bad() -> None:
        with pytest.raises(InvalidParametersError):
            await client.submit(RAW, {"prompt": {"a", "set"}})

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(good, i)
        tg.start_soon(bad)
    assert len(results) == 5


async def test_run_many_refuses_a_non_iterable_and_survives_a_bad_item(client: RunningHub) -> None:
    """run_many(None) is a TypeError at once; one bad item is one failed item."""
    with pytest.raises(TypeError):
        async for _ in client.run_many(T2I, None):  # type: ignore[arg-type]
            pass
    items = [i async for i in client.run_many(T2I, [GOOD, {"prompt": math.nan}, GOOD])]
    assert sorted(i.index for i in items) == [0, 1, 2]
    (bad,) = [i for i in items if not i.ok]
    assert bad.index == 1
    assert isinstance(bad.error, InvalidParametersError)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"api_key": "key-with-newline\n"}, ValueError),
        ({"api_key": " spaced key"}, ValueError),
        ({"api_key": "ключ"}, ValueError),
        ({"api_key": 123}, TypeError),
        ({"api_key": b"bytes"}, TypeError),
        ({"api_key": ""}, AuthenticationError),
        ({"base_url": "http://"}, ValueError),
        ({"base_url": "http://h:99999"}, ValueError),
        ({"base_url": "http://h/?q=1"}, ValueError),
        ({"base_url": "http://h/\r\nx"}, ValueError),
        ({"base_url": "ftp://h"}, ValueError),
        ({"base_url": "http://user:pw@h"}, ValueError),
        ({"job_timeout": None}, TypeError),
        ({"job_timeout": "10"}, TypeError),
        ({"job_timeout": math.nan}, ValueError),
        ({"job_timeout": -1}, ValueError),
        ({"max_in_flight": True}, TypeError),
        ({"max_in_flight": 0}, ValueError),
        ({"requests_per_second": math.inf}, ValueError),
        ({"webhook_url": 123}, TypeError),
        ({"webhook_url": "file:///etc/passwd"}, ValueError),
        ({"max_connections": 2.5}, TypeError),
        ({"validate": "yes"}, TypeError),
    ],
)
def test_bad_constructor_arguments_fail_at_construction(
    options: dict[str, Any], error: type[Exception]
) -> None:
    """Wrong types and values are named at once, and a bad key is never shown."""
    arguments: dict[str, Any] = {"api_key": "good-key", "base_url": "http://127.0.0.1:9"}
    arguments.update(options)
    with pytest.raises(error) as caught:
        RunningHub(**arguments)
    key = arguments["api_key"]
    if isinstance(key, str) and key.strip():
        assert key.strip() not in str(caught.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: PollPolicy(min_interval=math.nan),
        lambda: PollPolicy(max_concurrent=True),
        lambda: PollPolicy(target_delay="1"),  # type: ignore[arg-type]
        lambda: Timeouts(total=math.inf),
        lambda: Timeouts(max_response_bytes=0),
        lambda: Timeouts(max_response_bytes=2**63),  # overflowed zlib's ssize_t on gzip answers
        lambda: Timeouts(max_response_bytes=2**30 + 1),
    ],
)
def test_bad_config_objects_fail_at_construction(build: Any) -> None:
    """NaN, infinities, bools and strings are refused by the config objects themselves."""
    with pytest.raises((TypeError, ValueError)):
        build()


def test_the_largest_answer_bound_is_a_gib() -> None:
    """``max_response_bytes`` goes up to 1 GiB, not past it."""
    assert Timeouts(max_response_bytes=2**30).max_response_bytes == 2**30


IMG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
EDIT = "rhart-image-n-pro/edit"
EDIT_PARAMS = {"prompt": "x", "imageUrls": [IMG], "resolution": "1k"}
TXT2IMG = "1904163390028185602"  # a workflow the fake knows
HOOK = "ftp://example.com/hook"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        # JSON cannot carry a lone surrogate: submit's own encoding would refuse it.
        (lambda c: c.submit(EDIT, {**EDIT_PARAMS, "prompt": "x \ud800"}), ValueError),
        (lambda c: c.submit_edit_image("x \ud800", [IMG]), ValueError),
        (lambda c: c.submit_app("123", {"1.image": IMG, "2.text": "\ud800"}), ValueError),
        # A per-call webhook URL RunningHub cannot call.
        (lambda c: c.submit_edit_image("x", [IMG], webhook_url=HOOK), ValueError),
        (lambda c: c.submit_app("123", {"1.image": IMG}, webhook_url=HOOK), ValueError),
        (lambda c: c.submit_workflow("123", {"1.image": IMG}, webhook_url=HOOK), ValueError),
        # An int over the interpreter's int -> str digit limit.
        (lambda c: c.submit_app("123", {"1.image": IMG, "2.seed": 10**5000}), ValueError),
        (
            lambda c: c.submit_workflow(
                "1", [NodeInput("1", "image", IMG), NodeInput("2", "seed", -(10**5000))]
            ),
            ValueError,
        ),
        # Run options of the wrong type or an unknown instance type.
        (lambda c: c.submit_app("123", {"1.image": IMG}, instance_type="turbo"), ValueError),
        (lambda c: c.submit_workflow("1", {}, instance_type=["x"]), TypeError),
        (lambda c: c.submit_workflow("1", {}, use_personal_queue="maybe"), TypeError),
        (lambda c: c.submit_workflow("1", {}, add_metadata=1), TypeError),
        (lambda c: c.submit_app("1", {}, instance_type="turbo"), InvalidParametersError),
    ],
)
async def test_bad_input_is_refused_before_any_upload(
    call: Any, error: type[Exception], fake: FakeRunningHub, make_client: ClientFactory
) -> None:
    """Each was refused only after uploading its local file, or sent as a paid submit."""
    async with make_client() as client:
        with pytest.raises(error) as caught:
            await call(client)
        assert fake.stats.requests_total == 0
        assert not fake.uploads
    if isinstance(caught.value, InvalidParametersError):
        assert "NaN" not in str(caught.value)


async def test_too_large_an_int_in_node_inputs_is_named(client: RunningHub) -> None:
    """A clear error naming the input, not the interpreter's digit limit."""
    with pytest.raises(InvalidParametersError, match="integer too large to send") as caught:
        await client.submit_app("123", {"2.seed": 10**5000})
    assert caught.value.field == "inputs['2.seed']"


async def test_instance_types_documented_or_reported_are_sent(
    fake: FakeRunningHub, make_client: ClientFactory
) -> None:
    """The instance types "default", "plus" and "ultra" go out; unvalidated, any str does."""
    async with make_client() as client:
        for kind in ("default", "plus", "ultra"):
            await client.submit_workflow(TXT2IMG, {}, instance_type=kind, use_personal_queue=True)
    async with make_client(validate=False) as client:
        await client.submit_workflow(TXT2IMG, {}, instance_type="mega")
        with pytest.raises(TypeError):
            await client.submit_workflow("1", {}, instance_type=2)  # type: ignore[arg-type]
    assert [t.params.get("instanceType") for t in fake.tasks.values()] == [
        "default",
        "plus",
        "ultra",
        "mega",
    ]


async def test_a_file_object_past_its_end_is_refused_before_sending(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """Its size would be negative (aiohttp's "Invalid Content-Length header: '-9806'")."""
    path = tmp_path / "small.png"
    path.write_bytes(IMG)
    with path.open("rb") as handle:
        handle.seek(10_000)
        with pytest.raises(ValueError, match="past its end"):
            await client.upload(handle)
        handle.seek(8)  # from the current position: the rest of the file
        uploaded = await client.upload(handle)
    assert uploaded.size == len(IMG) - 8
    assert fake.stats.requests_total == 1


async def test_a_failed_jobs_traceback_does_not_grow_with_each_wait(
    manual: FakeRunningHub, make_client: ClientFactory
) -> None:
    """The 500th wait raises with a traceback as short as the first's."""
    async with make_client(base_url=manual.base_url) as client:
        job = await client.submit(T2I, GOOD)
        manual.fail(job.task_id)
        lengths = []
        for _ in range(500):
            try:
                await job.wait()
            except TaskFailedError as exc:
                lengths.append(len(traceback.extract_tb(exc.__traceback__)))
    assert lengths[-1] == lengths[0]
