"""Every catalogued model through the real client against the fake, and local refusals."""

from __future__ import annotations

import io
import json
import struct
import wave
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from runninghub_async import InvalidParametersError, RunningHub, catalog
from runninghub_async.catalog import ModelSpec, ParamSpec
from runninghub_async.testing import FakeRunningHub

from .conftest import FAST_POLL, FAST_RETRY
from .test_catalog import valid_body

EXTENSION = {"image": "png", "video": "mp4", "audio": "wav", "text": "txt", "3d": "glb"}
KINDS = tuple(EXTENSION)

# Module-scoped: one fake and one client serve all ~300 runs.
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeRunningHub]:
    """A fake whose tasks finish almost at once."""
    async with FakeRunningHub(duration=0.001, seed=3) as server:
        yield server


@pytest.fixture(scope="module")
async def client(fake: FakeRunningHub) -> AsyncIterator[RunningHub]:
    """One open client for the whole module."""
    async with RunningHub(
        api_key=fake.api_key,
        base_url=fake.base_url,
        max_in_flight=8,
        requests_per_second=None,
        poll=FAST_POLL,
        retry=FAST_RETRY,
        seed=7,
    ) as opened:
        yield opened


@pytest.mark.parametrize("spec", catalog.models(), ids=lambda s: s.path)
async def test_every_model_runs_with_a_valid_body(spec: ModelSpec, client: RunningHub) -> None:
    """The minimal valid body of each model runs; its output is of the model's kind."""
    result = await client.run(spec.endpoint, valid_body(spec))
    assert result.outputs
    output = result.outputs[0]
    assert output.output_type == EXTENSION[spec.output_type]
    if spec.output_type == "text":
        assert output.text


def _first_of_kind(kind: str) -> ModelSpec:
    return next(s for s in catalog.models() if s.output_type == kind and s.params)


async def _fetch(url: str) -> tuple[str, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        return response.content_type, await response.read()


def _check_png(data: bytes) -> None:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


def _check_mp4(data: bytes) -> None:
    kinds = []
    offset = 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        assert size >= 8
        kinds.append(kind)
        offset += size
    assert offset == len(data)
    assert kinds == [b"ftyp", b"moov", b"mdat"]


def _check_wav(data: bytes) -> None:
    with wave.open(io.BytesIO(data)) as audio:
        assert audio.getnframes() > 0


def _check_txt(data: bytes) -> None:
    assert data.decode("utf-8")


def _check_glb(data: bytes) -> None:
    magic, version, length = struct.unpack("<4sII", data[:12])
    assert (magic, version, length) == (b"glTF", 2, len(data))
    chunk_length, chunk_type = struct.unpack("<I4s", data[12:20])
    assert chunk_type == b"JSON"
    assert json.loads(data[20 : 20 + chunk_length])["asset"]["version"] == "2.0"


CHECKS: dict[str, tuple[str, Callable[[bytes], None]]] = {
    "image": ("image/png", _check_png),
    "video": ("video/mp4", _check_mp4),
    "audio": ("audio/wav", _check_wav),
    "text": ("text/plain", _check_txt),
    "3d": ("model/gltf-binary", _check_glb),
}


@pytest.mark.parametrize("kind", KINDS)
async def test_output_files_are_valid_files_of_their_kind(kind: str, client: RunningHub) -> None:
    """The fake serves a real PNG, MP4, WAV, text or GLB file with its content type."""
    spec = _first_of_kind(kind)
    result = await client.run(spec.endpoint, valid_body(spec))
    url = result.outputs[0].url
    assert url is not None
    content_type, data = await _fetch(url)
    expected_type, check = CHECKS[kind]
    assert content_type == expected_type
    check(data)
    if kind == "text":
        assert data.decode("utf-8") == result.outputs[0].text


# -- refused before any request ------------------------------------------------------


def _pick(kind: str, wanted: Callable[[ParamSpec], bool]) -> tuple[ModelSpec, ParamSpec]:
    for spec in catalog.models():
        if spec.output_type != kind:
            continue
        for param in spec.params:
            if wanted(param):
                return spec, param
    raise LookupError(kind)


def _has_enum(p: ParamSpec) -> bool:
    return p.type == "enum" and bool(p.allowed)


def _has_range(p: ParamSpec) -> bool:
    return p.type in ("int", "float") and p.maximum is not None


def _break_enum(body: dict[str, Any], param: ParamSpec) -> None:
    body[param.name] = "not-a-choice"


def _break_range(body: dict[str, Any], param: ParamSpec) -> None:
    assert param.maximum is not None
    big = param.maximum + 1000
    body[param.name] = int(big) if param.type == "int" else float(big)


def _drop_required(body: dict[str, Any], param: ParamSpec) -> None:
    del body[param.name]


def _add_unknown(body: dict[str, Any], param: ParamSpec) -> None:
    body[param.name + "_typo"] = 1


Breaker = Callable[[dict[str, Any], ParamSpec], None]
BREAKS: dict[str, tuple[Callable[[ParamSpec], bool], Breaker]] = {
    "enum": (_has_enum, _break_enum),
    "range": (_has_range, _break_range),
    "missing": (lambda p: p.required, _drop_required),
    "unknown": (lambda p: True, _add_unknown),
}  # fmt: skip


def _cases() -> list[Any]:
    cases = []
    for kind in KINDS:
        for name, (wanted, _) in BREAKS.items():
            try:
                spec, param = _pick(kind, wanted)
            except LookupError:
                continue
            cases.append(pytest.param(name, spec, param, id=f"{kind}-{name}-{spec.path}"))
    return cases


@pytest.mark.parametrize(("breakage", "spec", "param"), _cases())
async def test_bad_params_are_refused_before_any_request(
    breakage: str, spec: ModelSpec, param: ParamSpec, client: RunningHub, fake: FakeRunningHub
) -> None:
    """A wrong enum, out-of-range number, missing or unknown field: no request at all."""
    body = valid_body(spec)
    if param.name not in body and breakage != "unknown":
        body[param.name] = valid_body_value(spec, param)
    BREAKS[breakage][1](body, param)
    before = fake.stats.requests_total
    with pytest.raises(InvalidParametersError) as caught:
        await client.submit(spec.endpoint, body)
    assert caught.value.code == "local"
    expected = param.name + "_typo" if breakage == "unknown" else param.name
    assert caught.value.field == expected
    if breakage == "unknown":
        assert f"did you mean {param.name}?" in str(caught.value)
    assert fake.stats.requests_total == before


def valid_body_value(spec: ModelSpec, param: ParamSpec) -> Any:
    """A valid value for an optional *param* of *spec*."""
    full = valid_body(
        ModelSpec(
            path=spec.path,
            name=spec.name,
            params=tuple(
                ParamSpec(p.name, p.type, True, p.allowed, p.minimum, p.maximum, p.step)
                if p.name == param.name
                else p
                for p in spec.params
            ),
        )
    )
    return full[param.name]


def test_every_kind_has_every_breakage_but_the_few_that_do_not_exist() -> None:
    """The refusal cases cover each output kind (so a new registry cannot empty them)."""
    covered = {(c.values[1].output_type, c.values[0]) for c in _cases()}
    for kind in KINDS:
        assert (kind, "missing") in covered
        assert (kind, "unknown") in covered
        assert (kind, "enum") in covered
    assert sum(1 for kind in KINDS if (kind, "range") in covered) >= 4
