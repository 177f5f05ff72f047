"""The model catalog: its packaged facts, search, and validation before any request."""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys
from importlib.resources import files
from typing import Any

import pytest

from runninghub_async import InvalidParametersError, catalog
from runninghub_async._catalog import (
    ENDPOINTS,
    Catalog,
    invalid_parameters,
    lookup,
    require,
    resolve_endpoint,
)
from runninghub_async._checks import violations
from runninghub_async._registry import FORMAT, compact
from runninghub_async.catalog import ModelSpec

MB = 1024 * 1024


def _data() -> dict[str, Any]:
    text = files("runninghub_async").joinpath("_data", "catalog.json").read_text("utf-8")
    return dict(json.loads(text))


def _fields(problems: list[Any]) -> list[str]:
    return [p.field for p in problems]


# -- the packaged data ---------------------------------------------------------


def test_packaged_data_credits_its_source_and_carries_no_prose() -> None:
    """The data file names the registry and its licence, and holds facts only."""
    data = _data()
    assert data["format"] == FORMAT
    assert "public-2026-04-29" in data["source"]
    assert data["license"] == "Apache-2.0"
    text = json.dumps(data, ensure_ascii=False)
    assert '"description":' not in text  # a param may be called "description"; no key is
    assert "老奶奶" not in text  # a sample prompt of the registry, not a fact


def test_every_registry_model_and_the_lite_pages_are_catalogued() -> None:
    """299 registry models plus the four lite pages, by output type."""
    kinds: dict[str, int] = {}
    for spec in ENDPOINTS.values():
        kinds[spec.output_type] = kinds.get(spec.output_type, 0) + 1
    assert kinds == {"image": 71, "video": 174, "audio": 16, "text": 26, "3d": 16}
    assert len(catalog.models()) == 303


def test_known_facts_of_a_few_models() -> None:
    """Ranges, steps, enums, media limits, names and prices come through as documented."""
    width = catalog.get("seedream-v4/text-to-image").param("width")
    assert width is not None
    assert (width.type, width.minimum, width.maximum, width.step) == ("int", 512, 8192, 8)

    duration = catalog.get("kling-v2.5-turbo-pro/text-to-video").param("duration")
    assert duration is not None
    assert (duration.type, duration.allowed, duration.required) == ("enum", ("5", "10"), True)

    images = catalog.get("rhart-image-n-pro/edit").param("imageUrls")
    assert images is not None
    assert (images.multiple, images.max_items, images.max_bytes) == (True, 10, 10 * MB)
    assert images.formats == ("JPG", "PNG")

    speech = catalog.get("minimax/speech-2.8-hd")
    assert speech.endpoint == "rhart-audio/text-to-audio/speech-2.8-hd"
    assert speech.output_type == "audio"
    assert speech.name == "minimax/speech-2.8-hd"

    v1 = catalog.get("rhart-image-v1/text-to-image")
    assert v1.param("resolution") is None
    assert v1.price == 0.05
    assert v1.price_unit == "call"

    pro = catalog.get("rhart-image-n-pro/text-to-image")
    assert pro.price is None  # depends on the resolution
    assert pro.price_for({"resolution": "4k"}) == 0.5
    assert pro.price_for({}) == 0.4  # the default, 1k

    lite = catalog.get("nano-banana2-lite/image-to-image-official-stable")
    assert lite.endpoint == "rhart-image-n-g31-flash-lite-official/image-to-image"
    assert lite.media_fields == ("imageUrls",)


def test_registry_documents_convert_to_the_compact_format() -> None:
    """A registry entry keeps its facts and loses its descriptions."""
    registry = {
        "models": [
            {
                "endpoint": "vendor/model/text-to-video",
                "name_en": "model-t2v",
                "name_cn": "模型-文生视频",
                "output_type": "video",
                "category": "RunningHub/Vendor",
                "params": [
                    {"fieldKey": "prompt", "type": "STRING", "required": True,
                     "description": "long prose", "defaultValue": "a long sample prompt"},
                    {"fieldKey": "seconds", "type": "INT", "required": False,
                     "min": 2, "max": 10, "step": 2, "defaultValue": 4},
                    {"fieldKey": "frames", "type": "IMAGE", "required": False,
                     "multipleInputs": True, "maxInputNum": 3,
                     "accept": '["JPG","PNG"]', "maxSize": 5},
                ],
            }
        ]
    }  # fmt: skip
    pricing = {
        "pricing": [
            {"endpoint": "vendor/model/text-to-video", "currency": "CNY", "unit": "/秒",
             "pricing_type": "fixed", "price": 0.5}
        ]
    }  # fmt: skip
    data = compact(registry, pricing)
    assert data["models"] == [
        {
            "e": "vendor/model/text-to-video",
            "n": ["model-t2v", "模型-文生视频"],
            "o": "video",
            "c": "Vendor",
            "p": [
                {"k": "prompt", "t": "string", "r": 1},
                {"k": "seconds", "t": "int", "d": 4, "lo": 2, "hi": 10, "st": 2},
                {"k": "frames", "t": "image", "ls": 1, "mx": 3, "mb": 5, "f": ["JPG", "PNG"]},
            ],
            "$": {"u": "second", "p": 0.5},
        }
    ]
    spec = Catalog.from_data(data).require("模型-文生视频")
    assert spec.price is None  # per second, not per call
    assert spec.price_for({}) == 0.5
    assert _fields(violations(spec, {"prompt": "x", "seconds": 3})) == ["seconds"]


def test_a_catalog_loads_from_a_registry_file_or_a_compact_file(tmp_path: pathlib.Path) -> None:
    """Catalog.from_path reads a newer registry as well as the generated format."""
    registry = {
        "models": [
            {"endpoint": "new/model", "name_en": "new-model", "output_type": "string",
             "params": [{"fieldKey": "text", "type": "STRING", "required": True}]}
        ]
    }  # fmt: skip
    raw = tmp_path / "registry.json"
    raw.write_text(json.dumps(registry), encoding="utf-8")
    generated = tmp_path / "catalog.json"
    generated.write_text(json.dumps(compact(registry)), encoding="utf-8")
    for path in (raw, generated):
        loaded = Catalog.from_path(path)
        assert len(loaded) == 1
        spec = loaded.require("new-model")
        assert (spec.endpoint, spec.output_type) == ("new/model", "text")
        assert loaded.lookup("rhart-image-n-pro/edit") is None
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="not catalog data"):
        Catalog.from_path(bad)


def test_the_generator_writes_credited_compact_data_with_the_lite_pages(
    tmp_path: pathlib.Path,
) -> None:
    """tools/gen_catalog.py: registry + pricing in, minified credited data out."""
    registry = {
        "models": [
            {"endpoint": "rhart-image-v1/text-to-image", "name_en": "nano-banana/t2i",
             "output_type": "image", "category": "RunningHub/RHArt Image",
             "params": [{"fieldKey": "prompt", "type": "STRING", "required": True,
                         "description": "prose that must not be copied"}]}
        ]
    }  # fmt: skip
    pricing = {
        "pricing": [
            {"endpoint": "rhart-image-v1/text-to-image", "currency": "CNY", "unit": "/次",
             "price": 0.05}
        ]
    }  # fmt: skip
    (tmp_path / "r.json").write_text(json.dumps(registry), encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps(pricing), encoding="utf-8")
    out = tmp_path / "catalog.json"
    script = pathlib.Path(__file__).resolve().parents[1] / "tools" / "gen_catalog.py"
    args = ["--registry", str(tmp_path / "r.json"), "--pricing", str(tmp_path / "p.json")]
    subprocess.run(
        [sys.executable, str(script), *args, "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    text = out.read_text(encoding="utf-8")
    assert "\n" not in text.rstrip("\n")  # minified
    assert "prose" not in text
    data = json.loads(text)
    assert "Apache-2.0" in data["source"]
    paths = [m["e"] for m in data["models"]]
    assert paths == sorted(paths)
    assert len(paths) == 5  # the one model plus the four lite pages
    v1 = Catalog.from_data(data).require("nano-banana/t2i")
    assert v1.price == 0.05


# -- finding models ------------------------------------------------------------


def test_find_ranks_exact_matches_first() -> None:
    """find() matches every word and puts an exact name or path first."""
    found = catalog.find("minimax/speech-2.8-hd")
    assert found[0].endpoint == "rhart-audio/text-to-audio/speech-2.8-hd"
    speech = catalog.find("speech 2.8")
    assert {s.endpoint for s in speech} >= {
        "rhart-audio/text-to-audio/speech-2.8-hd",
        "rhart-audio/text-to-audio/speech-2.8-turbo",
    }
    by_kind = catalog.find("3d")
    assert [s.output_type for s in by_kind[:16]] == ["3d"] * 16  # the output type matches exactly
    assert catalog.find("kling image-to-video")
    assert all("kling" in s.path for s in catalog.find("kling image-to-video"))
    assert catalog.find("no such model anywhere") == []
    assert len(catalog.find("")) == 303


def test_names_and_paths_resolve_to_the_same_spec() -> None:
    """A documented name, its path, a /openapi/v2/ prefix or other case: one spec."""
    spec = require("rhart-image-n-pro/text-to-image")
    for given in (
        "nano-banana-pro/text-to-image-channel-low-price",
        "/openapi/v2/rhart-image-n-pro/text-to-image",
        "NANO-BANANA-PRO/text-to-image-channel-low-price",
        "全能图片PRO-文生图-低价渠道版",
    ):
        assert lookup(given) is spec
        assert resolve_endpoint(given) == spec.path
    assert resolve_endpoint("run/ai-app/123") == "run/ai-app/123"  # not catalogued, kept
    with pytest.raises(ValueError, match="not an endpoint"):
        resolve_endpoint("../account")


def test_an_unknown_model_names_the_closest_ones() -> None:
    """get()/require() of an unknown model: InvalidParametersError on "endpoint"."""
    with pytest.raises(InvalidParametersError) as caught:
        catalog.get("minimax/speech-2.8")
    error = caught.value
    assert (error.code, error.field, error.value) == ("local", "endpoint", "minimax/speech-2.8")
    assert error.allowed is not None
    assert "minimax/speech-2.8-hd" in error.allowed.split(", ")
    assert 3 <= len(error.allowed.split(", ")) <= 5
    assert "did you mean" in str(error)
    with pytest.raises(InvalidParametersError, match=r"kling-v3\.0-pro/image-to-video"):
        require("kling-v3.0-pro/image-to-vido")


# -- validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "body", "field", "words"),
    [
        (
            "rhart-image-n-pro/text-to-image",
            {"prompt": "x", "resolution": "1k", "aspect_ratio": "16:9"},
            "aspect_ratio",
            "did you mean aspectRatio?",
        ),
        (
            "rhart-image-v1/text-to-image",
            {"prompt": "x", "aspectRatio": "1:1", "resolution": "4k"},
            "resolution",
            "is not a parameter",
        ),
        ("seedream-v4/text-to-image", {"prompt": "x", "width": 99999}, "width", "out of range"),
        ("seedream-v4/text-to-image", {"prompt": "x", "width": 1001}, "width", "steps of 8"),
        ("seedream-v4/text-to-image", {"prompt": "x", "width": 1024.0}, "width", "integer"),
        ("seedream-v4/text-to-image", {"prompt": "x", "maxImages": True}, "maxImages", "integer"),
        (
            "kling-v2.5-turbo-pro/text-to-video",
            {"prompt": "x", "duration": "99"},
            "duration",
            "one of 5, 10",
        ),
        (
            "kling-v2.5-turbo-pro/text-to-video",
            {"prompt": "x", "duration": 5},
            "duration",
            "must be the string '5'",
        ),
        (
            "rhart-audio/text-to-audio/speech-2.8-hd",
            {"text": "hi", "speed": math.nan},
            "speed",
            "finite",
        ),
        (
            "rhart-audio/text-to-audio/speech-2.8-hd",
            {"text": "hi", "speed": 0.505},
            "speed",
            "steps of 0.01",
        ),
        (
            "rhart-audio/text-to-audio/speech-2.8-hd",
            {"text": "hi", "english_normalization": "yes"},
            "english_normalization",
            "true or false",
        ),
        (
            "rhart-image-n-pro/edit",
            {"prompt": "x", "resolution": "1k", "imageUrls": ["https://h/a.webp"]},
            "imageUrls[0]",
            "WEBP file",
        ),
        (
            "rhart-image-n-pro/edit",
            {"prompt": "x", "resolution": "1k", "imageUrls": "https://h/a.png"},
            "imageUrls",
            "must be a list",
        ),
        (
            "topazlabs/image-upscale-cgi",
            {"imageUrl": ["https://h/a.png"], "scale": "2x"},
            "imageUrl",
            "one file",
        ),
    ],
)
def test_violations_name_the_field_and_what_is_wrong(
    endpoint: str, body: dict[str, Any], field: str, words: str
) -> None:
    """Each bad body gets a violation on the right field saying what is wrong."""
    problems = violations(require(endpoint), body)
    assert field in _fields(problems), problems
    text = "; ".join(str(p) for p in problems)
    assert words in text


def test_none_means_not_given() -> None:
    """None for an optional param is fine; for a required one it is missing."""
    spec = require("rhart-image-n-pro/text-to-image")
    assert violations(spec, {"prompt": "x", "resolution": "1k", "aspectRatio": None}) == []
    problems = violations(spec, {"prompt": "x", "resolution": None})
    assert [(p.field, p.problem) for p in problems] == [("resolution", "is required")]


def test_open_models_and_common_fields_take_any_name() -> None:
    """Models the registry lists no params for, and webhookUrl, are not refused."""
    assert violations(require("rhart-image/f-dev"), {"23##text": "a cat", "x": 1}) == []
    spec = require("rhart-image-n-pro/text-to-image")
    body = {"prompt": "x", "resolution": "1k", "webhookUrl": "https://h/hook"}
    assert violations(spec, body) == []


@pytest.mark.parametrize(
    ("endpoint", "field", "size"),
    [
        ("rhart-image-n-pro/edit", "imageUrls", 10 * MB + 1),
        ("kling-lip-sync/identify-face", "videoUrl", 100 * MB + 1),
        ("rhart-audio/text-to-audio/voice-clone", "audio", 10 * MB + 1),
    ],
)
def test_media_over_the_size_limit_is_too_large(endpoint: str, field: str, size: int) -> None:
    """Known sizes of any media type count against the model's per-file limit."""
    spec = require(endpoint)
    param = spec.param(field)
    assert param is not None
    url = f"https://h/file.{param.formats[0].lower()}"
    body = dict(_valid_body(spec))
    body[field] = [url] if param.multiple else url
    assert violations(spec, body, image_sizes={url: size - 1}) == []
    problems = violations(spec, body, image_sizes={url: size})
    assert problems
    assert problems[0].too_large
    assert problems[0].field.startswith(field)
    error = invalid_parameters(spec, problems)
    assert type(error).__name__ == "FileTooLargeError"
    assert str(size) in str(error)


def test_importing_the_package_does_not_load_the_catalog() -> None:
    """The JSON is read on first use, not at import (nor by importing catalog)."""
    code = (
        "import runninghub_async, runninghub_async.catalog\n"
        "from runninghub_async import _catalog\n"
        "print(_catalog.default_catalog.cache_info().currsize)\n"
        "_catalog.lookup('rhart-image-n-pro/edit')\n"
        "print(_catalog.default_catalog.cache_info().currsize)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["0", "1"]


# -- a valid call of every model -------------------------------------------------


def _valid_value(param: Any) -> Any:
    kind = param.type
    if kind == "string":
        return "a fox"[: param.max_length or None]
    if kind == "enum":
        return param.allowed[0] if param.allowed else "x"
    if kind in ("int", "float"):
        value = param.minimum if param.minimum is not None else 0
        if param.maximum is not None:
            value = min(value, param.maximum)
        return int(value) if kind == "int" else float(value)
    if kind == "bool":
        return False
    fmt = param.formats[0].lower() if param.formats else "png"
    url = f"https://example.com/input.{fmt}"
    return [url] if param.multiple else url


def _valid_body(spec: ModelSpec) -> dict[str, Any]:
    """The smallest valid body: every required param, with its first or lowest value."""
    return {p.name: _valid_value(p) for p in spec.params if p.required}


def valid_body(spec: ModelSpec) -> dict[str, Any]:
    """`_valid_body`, for the client tests."""
    return _valid_body(spec)


@pytest.mark.parametrize("spec", catalog.models(), ids=lambda s: s.path)
def test_every_model_has_a_valid_body(spec: ModelSpec) -> None:
    """The catalog is consistent: its own minimal body passes its own checks."""
    assert violations(spec, _valid_body(spec)) == []
