"""The image helpers: every nano-banana endpoint, defaults, and validation before any request."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from runninghub_async import (
    FileTooLargeError,
    InvalidParametersError,
    RunningHub,
    TaskStatus,
)
from runninghub_async._catalog import ENDPOINTS, MODELS
from runninghub_async._images import data_uri_size, image_params
from runninghub_async.testing import FakeRunningHub

pytestmark = pytest.mark.anyio

MB = 1024 * 1024
URL = "https://example.com/input.png"

# Written from runninghub-api.md section 2.2, independently of the catalog:
# model -> (text-to-image path, edit path, default resolution or None,
#           aspectRatio default sent for text-to-image / edit when it is required).
DOCUMENTED: dict[str, tuple[str, str, str | None, str | None, str | None]] = {
    "nano-banana-pro": (
        "rhart-image-n-pro/text-to-image",
        "rhart-image-n-pro/edit",
        "1k",
        None,
        None,
    ),
    "nano-banana-pro-official": (
        "rhart-image-n-pro-official/text-to-image",
        "rhart-image-n-pro-official/edit",
        "1k",
        None,
        None,
    ),
    "nano-banana-pro-ultra": (
        "rhart-image-n-pro-official/text-to-image-ultra",
        "rhart-image-n-pro-official/edit-ultra",
        "8k",
        None,
        None,
    ),
    "nano-banana2": (
        "rhart-image-n-g31-flash/text-to-image",
        "rhart-image-n-g31-flash/image-to-image",
        "1k",
        None,
        None,
    ),
    "nano-banana2-official": (
        "rhart-image-n-g31-flash-official/text-to-image",
        "rhart-image-n-g31-flash-official/image-to-image",
        "1k",
        None,
        None,
    ),
    "nano-banana": ("rhart-image-v1/text-to-image", "rhart-image-v1/edit", None, "3:4", "auto"),
    "nano-banana-official": (
        "rhart-image-v1-official/text-to-image",
        "rhart-image-v1-official/edit",
        None,
        "3:4",
        "auto",
    ),
    "nano-banana2-lite": (
        "rhart-image-n-g31-flash-lite/text-to-image",
        "rhart-image-n-g31-flash-lite/image-to-image",
        None,
        None,
        None,
    ),
    "nano-banana2-lite-official": (
        "rhart-image-n-g31-flash-lite-official/text-to-image",
        "rhart-image-n-g31-flash-lite-official/image-to-image",
        None,
        None,
        None,
    ),
}
WITH_RESOLUTION = [m for m, row in DOCUMENTED.items() if row[2] is not None]
WITHOUT_RESOLUTION = [m for m, row in DOCUMENTED.items() if row[2] is None]
# Per-image limits of the edit endpoints, where documented.
IMAGE_LIMITS = {
    "nano-banana-pro": (10, 10 * MB),
    "nano-banana-pro-official": (10, 10 * MB),
    "nano-banana-pro-ultra": (10, 10 * MB),
    "nano-banana2": (10, 30 * MB),
    "nano-banana2-official": (14, 10 * MB),
    "nano-banana": (5, 10 * MB),
    "nano-banana-official": (5, 10 * MB),
}


def test_models_cover_every_catalogued_endpoint_once() -> None:
    """MODELS maps the nine names to 18 distinct catalogued paths, as documented."""
    assert {m: (t, e) for m, (t, e, *_) in DOCUMENTED.items()} == dict(MODELS)
    paths = [p for pair in MODELS.values() for p in pair]
    assert len(set(paths)) == 18
    assert all(p in ENDPOINTS and ENDPOINTS[p].output_type == "image" for p in paths)


@pytest.mark.parametrize("model", list(DOCUMENTED))
async def test_text_to_image_uses_the_models_endpoint_and_defaults(
    model: str, client: RunningHub, fake: FakeRunningHub
) -> None:
    """text_to_image hits the model's path with the documented required defaults only."""
    path, _, resolution, ratio, _ = DOCUMENTED[model]
    result = await client.text_to_image("a lighthouse at dusk", model=model)
    assert result.status is TaskStatus.SUCCESS
    task = fake.tasks[result.task_id]
    assert task.endpoint == path
    expected: dict[str, Any] = {"prompt": "a lighthouse at dusk"}
    if ratio is not None:
        expected["aspectRatio"] = ratio
    if resolution is not None:
        expected["resolution"] = resolution
    assert dict(task.params) == expected


@pytest.mark.parametrize("model", list(DOCUMENTED))
async def test_edit_image_uses_the_models_endpoint_and_defaults(
    model: str, client: RunningHub, fake: FakeRunningHub
) -> None:
    """edit_image hits the model's edit path; URL inputs pass through untouched."""
    _, path, resolution, _, ratio = DOCUMENTED[model]
    result = await client.edit_image("make it blue", [URL, URL + "?v=2"], model=model)
    task = fake.tasks[result.task_id]
    assert task.endpoint == path
    expected: dict[str, Any] = {"prompt": "make it blue", "imageUrls": [URL, URL + "?v=2"]}
    if ratio is not None:
        expected["aspectRatio"] = ratio
    if resolution is not None:
        expected["resolution"] = resolution
    assert dict(task.params) == expected
    assert fake.stats.uploads == 0


@pytest.mark.parametrize("model", list(DOCUMENTED))
async def test_explicit_ratio_and_resolution_are_sent(
    model: str, client: RunningHub, fake: FakeRunningHub
) -> None:
    """Given values reach the body as aspectRatio and resolution, on both tasks."""
    resolution = {"1k": "2k", "8k": "4k", None: None}[DOCUMENTED[model][2]]
    t2i = await client.submit_text_to_image(
        "x", model=model, aspect_ratio="16:9", resolution=resolution
    )
    edit = await client.submit_edit_image(
        "y", [URL], model=model, aspect_ratio="16:9", resolution=resolution
    )
    for job in (t2i, edit):
        await job.wait()
        params = fake.tasks[job.task_id].params
        assert params["aspectRatio"] == "16:9"
        assert params.get("resolution") == resolution


async def test_original_endpoints_work_by_documented_name(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """The two endpoints first asked for work by name through submit() and the helpers."""
    t2i = await client.submit(
        "nano-banana-pro/text-to-image-channel-low-price",
        {"prompt": "a fox", "aspectRatio": "9:16", "resolution": "1k"},
    )
    ultra = await client.submit(
        "nano-banana-pro/edit-ultra-official-stable",
        {"prompt": "sharper", "imageUrls": [URL], "resolution": "8k"},
    )
    assert fake.tasks[t2i.task_id].endpoint == "rhart-image-n-pro/text-to-image"
    assert fake.tasks[ultra.task_id].endpoint == "rhart-image-n-pro-official/edit-ultra"
    await t2i.wait()
    await ultra.wait()
    by_helper = await client.text_to_image("a fox", aspect_ratio="9:16")
    assert fake.tasks[by_helper.task_id].endpoint == "rhart-image-n-pro/text-to-image"
    edited = await client.edit_image("sharper", [URL], model="nano-banana-pro-ultra")
    assert fake.tasks[edited.task_id].endpoint == "rhart-image-n-pro-official/edit-ultra"
    assert fake.tasks[edited.task_id].params["resolution"] == "8k"


# -- validation before any request ------------------------------------------------------

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("bad aspect ratio", {"aspect_ratio": "7:3"}, "aspectRatio"),
    ("pro ratio on v1's list only", {"aspect_ratio": "auto"}, "aspectRatio"),
    ("bad resolution", {"resolution": "3k"}, "resolution"),
    ("uppercase resolution", {"resolution": "1K"}, "resolution"),
    ("ultra below 4k", {"model": "nano-banana-pro-ultra", "resolution": "1k"}, "resolution"),
    ("nano2 ratio on pro", {"aspect_ratio": "1:8"}, "aspectRatio"),
    ("resolution on v1", {"model": "nano-banana", "resolution": "1k"}, "resolution"),
    ("resolution on lite", {"model": "nano-banana2-lite", "resolution": "2k"}, "resolution"),
    ("prompt too long", {"prompt": "x" * 20001}, "prompt"),
    ("empty prompt", {"prompt": ""}, "prompt"),
    ("blank prompt", {"prompt": "   "}, "prompt"),
]


@pytest.mark.parametrize(("case", "kwargs", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_text_to_image_raises_before_any_request(
    case: str, kwargs: dict[str, Any], field: str, client: RunningHub, fake: FakeRunningHub
) -> None:
    """Each bad argument raises InvalidParametersError naming field, value and what is allowed."""
    arguments = {"prompt": "a fox", **kwargs}
    prompt = arguments.pop("prompt")
    with pytest.raises(InvalidParametersError) as caught:
        await client.text_to_image(prompt, **arguments)
    error = caught.value
    assert error.code == "local"
    assert error.field == field
    assert error.allowed
    assert field in str(error)
    if field != "prompt":
        assert error.value == kwargs[field.replace("aspectRatio", "aspect_ratio")]
    assert fake.stats.requests_total == 0


@pytest.mark.parametrize(("case", "kwargs", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_edit_raises_before_any_upload_or_submit(
    case: str,
    kwargs: dict[str, Any],
    field: str,
    client: RunningHub,
    fake: FakeRunningHub,
    tmp_path: pathlib.Path,
) -> None:
    """The same mistakes on an edit are caught before local images are uploaded."""
    image = tmp_path / "in.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    arguments = {"prompt": "a fox", **kwargs}
    prompt = arguments.pop("prompt")
    with pytest.raises(InvalidParametersError) as caught:
        await client.edit_image(prompt, [image, b"\x89PNG\r\n\x1a\nbytes"], **arguments)
    assert caught.value.field == field
    assert fake.stats.requests_total == 0


def test_resolution_on_a_model_without_it_names_the_models_that_have_one() -> None:
    """The error for resolution on v1 says which models take a resolution."""
    with pytest.raises(InvalidParametersError) as caught:
        image_params("text-to-image", "x", model="nano-banana", resolution="1k", image_urls=None)
    assert caught.value.field == "resolution"
    assert caught.value.value == "1k"
    assert "nano-banana-pro" in str(caught.value)


@pytest.mark.parametrize(("model", "limits"), list(IMAGE_LIMITS.items()))
async def test_too_many_images_raise_before_any_request(
    model: str, limits: tuple[int, int], client: RunningHub, fake: FakeRunningHub
) -> None:
    """One image over the endpoint's count raises, naming imageUrls and the limit."""
    count = limits[0] + 1
    with pytest.raises(InvalidParametersError) as caught:
        await client.edit_image("x", [URL] * count, model=model)
    assert caught.value.field == "imageUrls"
    assert f"{limits[0]} image URLs" in str(caught.value)
    assert fake.stats.requests_total == 0


@pytest.mark.parametrize(("model", "limits"), list(IMAGE_LIMITS.items()))
async def test_local_image_over_the_size_limit_is_never_uploaded(
    model: str, limits: tuple[int, int], client: RunningHub, fake: FakeRunningHub
) -> None:
    """Bytes one over the per-image limit raise FileTooLargeError naming imageUrls[i]."""
    big = bytes(limits[1] + 1)
    with pytest.raises(FileTooLargeError) as caught:
        await client.edit_image("x", [URL, big], model=model)
    assert caught.value.field == "imageUrls[1]"
    assert str(limits[1] + 1) in str(caught.value)
    assert f"{limits[1] // MB} MB" in str(caught.value)
    assert fake.stats.requests_total == 0


async def test_local_file_over_the_size_limit_is_never_read_or_uploaded(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """A file's size is taken from the file system; too big means no request at all."""
    big = tmp_path / "huge.png"
    with big.open("wb") as handle:
        handle.truncate(11 * MB)  # sparse: no need to write 11 MB
    with pytest.raises(FileTooLargeError) as caught:
        await client.edit_image("x", [big])
    assert caught.value.field == "imageUrls[0]"
    assert caught.value.value == str(big)
    assert fake.stats.requests_total == 0


async def test_lite_images_are_capped_by_the_upload_limit(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """Lite has no documented per-image size; the 30 MB upload limit still applies."""
    big = tmp_path / "huge.png"
    with big.open("wb") as handle:
        handle.truncate(30 * MB + 1)
    with pytest.raises(FileTooLargeError) as caught:
        await client.edit_image("x", [big], model="nano-banana2-lite")
    assert caught.value.field == "imageUrls[0]"
    assert fake.stats.requests_total == 0


async def test_unknown_model_is_a_value_error_listing_the_models(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """An unknown model name raises ValueError naming every known model; nothing is sent."""
    for call in (
        client.text_to_image("x", model="nano-banana-3"),
        client.edit_image("x", [URL], model="nano-banana-3"),
    ):
        with pytest.raises(ValueError, match="nano-banana-3") as caught:
            await call
        assert not isinstance(caught.value, InvalidParametersError)
        for name in MODELS:
            assert name in str(caught.value)
    assert fake.stats.requests_total == 0


async def test_a_str_image_must_be_a_url(client: RunningHub, fake: FakeRunningHub) -> None:
    """A str that is not a URL is refused (local files are Paths), naming imageUrls[i]."""
    with pytest.raises(InvalidParametersError) as caught:
        await client.edit_image("x", [URL, "photos/cat.png"])
    assert caught.value.field == "imageUrls[1]"
    assert caught.value.value == "photos/cat.png"
    with pytest.raises(TypeError):
        await client.edit_image("x", pathlib.Path("cat.png"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await client.edit_image("x", [42])  # type: ignore[list-item]
    assert fake.stats.requests_total == 0


async def test_no_images_is_refused(client: RunningHub, fake: FakeRunningHub) -> None:
    """An edit needs at least one image."""
    with pytest.raises(InvalidParametersError) as caught:
        await client.edit_image("x", [])
    assert caught.value.field == "imageUrls"
    assert fake.stats.requests_total == 0


async def test_a_missing_local_file_raises_before_any_request(
    client: RunningHub, fake: FakeRunningHub, tmp_path: pathlib.Path
) -> None:
    """A local path that does not exist is a FileNotFoundError, and nothing is sent."""
    with pytest.raises(FileNotFoundError):
        await client.edit_image("x", [tmp_path / "nope.png"])
    assert fake.stats.requests_total == 0


async def test_data_uri_images_pass_through_and_are_size_checked(
    client: RunningHub, fake: FakeRunningHub
) -> None:
    """A data: URI is sent as is; its decoded size counts against the limit."""
    small = "data:image/png;base64,iVBORw0KGgo="
    result = await client.edit_image("x", [small])
    assert fake.tasks[result.task_id].params["imageUrls"] == [small]
    assert fake.stats.uploads == 0
    with pytest.raises(FileTooLargeError) as caught:
        image_params(
            "edit",
            "x",
            model="nano-banana-pro",
            aspect_ratio=None,
            resolution=None,
            image_urls=[small],
            image_sizes={small: 10 * MB + 1},
        )
    assert caught.value.field == "imageUrls[0]"


def test_data_uri_size_is_the_decoded_length() -> None:
    """The size of a base64 data URI is what it decodes to; other strings have none."""
    assert data_uri_size("data:image/png;base64,QUJD") == 3
    assert data_uri_size("data:image/png;base64,QUI=") == 2
    assert data_uri_size("data:image/png;base64,QQ==") == 1
    assert data_uri_size("data:text/plain,hello") is None
    assert data_uri_size(URL) is None


def test_image_params_defaults() -> None:
    """Required params get documented defaults; optional aspectRatio stays unset."""
    assert image_params(
        "text-to-image", "x", model="nano-banana-pro", aspect_ratio=None, resolution=None,
        image_urls=None,
    ) == ("rhart-image-n-pro/text-to-image", {"prompt": "x", "resolution": "1k"})
    assert image_params(
        "edit", "x", model="nano-banana-pro-ultra", aspect_ratio="3:4", resolution=None,
        image_urls=[URL],
    ) == (
        "rhart-image-n-pro-official/edit-ultra",
        {"prompt": "x", "imageUrls": [URL], "aspectRatio": "3:4", "resolution": "8k"},
    )
    assert image_params(
        "edit", "x", model="nano-banana-official", aspect_ratio=None, resolution=None,
        image_urls=[URL],
    ) == (
        "rhart-image-v1-official/edit",
        {"prompt": "x", "imageUrls": [URL], "aspectRatio": "auto"},
    )
    with pytest.raises(ValueError, match="no input images"):
        image_params(
            "text-to-image", "x", model="nano-banana-pro", aspect_ratio=None, resolution=None,
            image_urls=[URL],
        )


async def test_validate_false_sends_uncatalogued_values(
    make_client: Any, fake: FakeRunningHub
) -> None:
    """With validate=False the helpers do not check values (RunningHub then judges them)."""
    async with make_client(validate=False) as client:
        with pytest.raises(InvalidParametersError) as caught:
            await client.text_to_image("x", resolution="3k")
    assert caught.value.code == "1007"  # the fake's verdict, not ours
    assert fake.stats.submit_requests == 1
