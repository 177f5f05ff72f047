"""Schemas of the nano-banana image endpoints, and validation against them.

The table follows runninghub-api.md section 2.2 (RunningHub's official model
registry plus the newer "lite" pages).  It is data, checked by both the client
(before any money is spent) and the fake server (which answers errorCode 1007
like the real one), so the two can never disagree about what is valid.

Endpoints outside the table are not validated: RunningHub has hundreds of
models and a wrong guess would block a valid call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

__all__ = [
    "DEFAULT_MODEL",
    "ENDPOINTS",
    "MODELS",
    "EndpointSpec",
    "ParamSpec",
    "Violation",
    "lookup",
    "resolve_endpoint",
    "violations",
]

MB = 1024 * 1024

_PRO_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "5:4", "4:5", "21:9")
_FLASH_RATIOS = (*_PRO_RATIOS, "1:4", "4:1", "1:8", "8:1")
_V1_RATIOS = ("auto", *_PRO_RATIOS)
_RESOLUTIONS = ("1k", "2k", "4k")
_ULTRA_RESOLUTIONS = ("4k", "8k")
_PROMPT_MAX = 20000


@attrs.frozen
class ParamSpec:
    """One body parameter of an endpoint.

    ``kind`` is ``"string"`` (a prompt), ``"enum"`` (one of ``choices``) or
    ``"images"`` (a list of image URLs, at most ``max_items``, each at most
    ``max_item_bytes`` when the client knows the size).
    """

    name: str
    kind: str
    required: bool
    choices: tuple[str, ...] = ()
    default: str | None = None
    max_length: int | None = None
    max_items: int | None = None
    max_item_bytes: int | None = None


@attrs.frozen
class EndpointSpec:
    """A catalogued endpoint: its path below ``/openapi/v2/``, documented name and params."""

    path: str
    name: str
    params: tuple[ParamSpec, ...]

    def param(self, name: str) -> ParamSpec | None:
        """The spec of body parameter *name*, or None when the endpoint has no such param."""
        for p in self.params:
            if p.name == name:
                return p
        return None


@attrs.frozen
class Violation:
    """One way a request body breaks its endpoint's schema."""

    field: str
    value: object
    problem: str
    allowed: str

    def __str__(self) -> str:
        shown = _short(self.value)
        if self.problem == "is required":
            return f"{self.field} is required ({self.allowed})"
        return f"{self.field}={shown} {self.problem}; allowed: {self.allowed}"


def _prompt(required: bool = True) -> ParamSpec:
    return ParamSpec("prompt", "string", required, max_length=_PROMPT_MAX)


def _ratio(choices: tuple[str, ...], default: str, required: bool = False) -> ParamSpec:
    return ParamSpec("aspectRatio", "enum", required, choices=choices, default=default)


def _resolution(choices: tuple[str, ...] = _RESOLUTIONS, default: str = "1k") -> ParamSpec:
    return ParamSpec("resolution", "enum", True, choices=choices, default=default)


def _images(max_items: int | None, max_mb: int | None) -> ParamSpec:
    return ParamSpec(
        "imageUrls",
        "images",
        True,
        max_items=max_items,
        max_item_bytes=None if max_mb is None else max_mb * MB,
    )


def _spec(path: str, name: str, *params: ParamSpec) -> EndpointSpec:
    return EndpointSpec(path=path, name=name, params=params)


_TABLE = (
    # nano-banana-pro
    _spec(
        "rhart-image-n-pro/text-to-image",
        "nano-banana-pro/text-to-image-channel-low-price",
        _prompt(),
        _ratio(_PRO_RATIOS, "9:16"),
        _resolution(),
    ),
    _spec(
        "rhart-image-n-pro/edit",
        "nano-banana-pro/edit-channel-low-price",
        _images(10, 10),
        _prompt(),
        _ratio(_PRO_RATIOS, "3:4"),
        _resolution(),
    ),
    _spec(
        "rhart-image-n-pro-official/text-to-image",
        "nano-banana-pro/text-to-image-official-stable",
        _resolution(),
        _prompt(),
        _ratio(_PRO_RATIOS, "3:4"),
    ),
    _spec(
        "rhart-image-n-pro-official/edit",
        "nano-banana-pro/edit-official-stable",
        _images(10, 10),
        _prompt(),
        _resolution(),
        _ratio(_PRO_RATIOS, "3:4"),
    ),
    _spec(
        "rhart-image-n-pro-official/text-to-image-ultra",
        "nano-banana-pro/text-to-image-ultra-official-stable",
        _prompt(),
        _resolution(_ULTRA_RESOLUTIONS, "8k"),
        _ratio(_PRO_RATIOS, "3:4"),
    ),
    _spec(
        "rhart-image-n-pro-official/edit-ultra",
        "nano-banana-pro/edit-ultra-official-stable",
        _images(10, 10),
        _prompt(),
        _resolution(_ULTRA_RESOLUTIONS, "8k"),
        _ratio(_PRO_RATIOS, "3:4"),
    ),
    # nano-banana2 (gemini 3.1 flash)
    _spec(
        "rhart-image-n-g31-flash/text-to-image",
        "nano-banana2-gemini31flash/text-to-image-channel-low-price",
        # The registry gives no maxLength here; the family limit is the safe reading.
        _prompt(),
        _ratio(_FLASH_RATIOS, "9:16"),
        _resolution(),
    ),
    _spec(
        "rhart-image-n-g31-flash/image-to-image",
        "nano-banana2-gemini31flash/image-to-image-channel-low-price",
        _images(10, 30),
        _prompt(),
        _ratio(_FLASH_RATIOS, "9:16"),
        _resolution(),
    ),
    _spec(
        "rhart-image-n-g31-flash-official/text-to-image",
        "nano-banana2-gemini31flash/text-to-image-official-stable",
        _prompt(),
        _ratio(_FLASH_RATIOS, "21:9"),
        _resolution(),
    ),
    _spec(
        "rhart-image-n-g31-flash-official/image-to-image",
        "nano-banana2-gemini31flash/image-to-image-official-stable",
        _images(14, 10),
        _prompt(),
        _ratio(_FLASH_RATIOS, "9:16"),
        _resolution(),
    ),
    # nano-banana v1: aspectRatio is required and there is no resolution
    _spec(
        "rhart-image-v1/text-to-image",
        "nano-banana/text-to-image-channel-low-price",
        _prompt(),
        _ratio(_V1_RATIOS, "3:4", required=True),
    ),
    _spec(
        "rhart-image-v1/edit",
        "nano-banana/edit-channel-low-price",
        _prompt(),
        _ratio(_V1_RATIOS, "auto", required=True),
        _images(5, 10),
    ),
    _spec(
        "rhart-image-v1-official/text-to-image",
        "nano-banana/text-to-image-official-stable",
        _prompt(),
        _ratio(_V1_RATIOS, "3:4", required=True),
    ),
    _spec(
        "rhart-image-v1-official/edit",
        "nano-banana/edit-official-stable",
        _prompt(),
        _ratio(_V1_RATIOS, "auto", required=True),
        _images(5, 10),
    ),
    # lite: no resolution; imageUrls limits are not documented, so none are enforced
    _spec(
        "rhart-image-n-g31-flash-lite/text-to-image",
        "nano-banana2-lite/text-to-image-channel-low-price",
        _prompt(),
        _ratio(_FLASH_RATIOS, "9:16"),
    ),
    _spec(
        "rhart-image-n-g31-flash-lite/image-to-image",
        "nano-banana2-lite/image-to-image-channel-low-price",
        _prompt(),
        _images(None, None),
        _ratio(_FLASH_RATIOS, "9:16"),
    ),
    _spec(
        "rhart-image-n-g31-flash-lite-official/text-to-image",
        "nano-banana2-lite/text-to-image-official-stable",
        _prompt(),
        _ratio(_FLASH_RATIOS, "1:1"),
    ),
    _spec(
        "rhart-image-n-g31-flash-lite-official/image-to-image",
        "nano-banana2-lite/image-to-image-official-stable",
        _prompt(),
        _images(None, None),
        _ratio(("auto", *_FLASH_RATIOS), "auto"),
    ),
)

ENDPOINTS: Mapping[str, EndpointSpec] = {spec.path: spec for spec in _TABLE}
"""Every catalogued endpoint, by path (below ``/openapi/v2/``)."""

_BY_NAME: Mapping[str, str] = {spec.name: spec.path for spec in _TABLE}

MODELS: Mapping[str, tuple[str, str]] = {
    "nano-banana-pro": ("rhart-image-n-pro/text-to-image", "rhart-image-n-pro/edit"),
    "nano-banana-pro-official": (
        "rhart-image-n-pro-official/text-to-image",
        "rhart-image-n-pro-official/edit",
    ),
    "nano-banana-pro-ultra": (
        "rhart-image-n-pro-official/text-to-image-ultra",
        "rhart-image-n-pro-official/edit-ultra",
    ),
    "nano-banana2": (
        "rhart-image-n-g31-flash/text-to-image",
        "rhart-image-n-g31-flash/image-to-image",
    ),
    "nano-banana2-official": (
        "rhart-image-n-g31-flash-official/text-to-image",
        "rhart-image-n-g31-flash-official/image-to-image",
    ),
    "nano-banana": ("rhart-image-v1/text-to-image", "rhart-image-v1/edit"),
    "nano-banana-official": (
        "rhart-image-v1-official/text-to-image",
        "rhart-image-v1-official/edit",
    ),
    "nano-banana2-lite": (
        "rhart-image-n-g31-flash-lite/text-to-image",
        "rhart-image-n-g31-flash-lite/image-to-image",
    ),
    "nano-banana2-lite-official": (
        "rhart-image-n-g31-flash-lite-official/text-to-image",
        "rhart-image-n-g31-flash-lite-official/image-to-image",
    ),
}
"""The image helpers' model names: name -> (text-to-image path, edit path).

A bare name is the low-price channel; ``-official`` is the official-stable one.
Every path is in `ENDPOINTS`, so every helper call is validated.
"""

DEFAULT_MODEL = "nano-banana-pro"
"""The model the image helpers use when none is named."""


def _normalise(endpoint: str) -> str:
    path = endpoint.strip()
    for prefix in ("/openapi/v2/", "openapi/v2/", "/"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    return path


def resolve_endpoint(endpoint: str) -> str:
    """The endpoint path for *endpoint*, given as a path or a documented name.

    A leading ``/openapi/v2/`` is accepted and dropped.  Names of catalogued
    endpoints (``"nano-banana-pro/text-to-image-channel-low-price"``) map to their
    path; anything else is taken to be a path already.

    Raises:
        ValueError: *endpoint* is empty or would leave the API's path space.
    """
    path = _normalise(endpoint)
    path = _BY_NAME.get(path, path)
    if not path or ".." in path.split("/") or "?" in path or "#" in path or "//" in path:
        raise ValueError(f"not an endpoint path or name: {endpoint!r}")
    return path


def lookup(endpoint: str) -> EndpointSpec | None:
    """The catalogued spec of *endpoint* (a path or a documented name), or None."""
    path = _normalise(endpoint)
    return ENDPOINTS.get(_BY_NAME.get(path, path))


def violations(
    spec: EndpointSpec,
    body: Mapping[str, object],
    *,
    image_sizes: Mapping[str, int] | None = None,
) -> list[Violation]:
    """Every way *body* breaks *spec*, in the order of the spec's params.

    *image_sizes* maps an image URL to its size in bytes where the caller knows
    it (local files about to be uploaded); other URLs are not size-checked.
    Unknown extra keys are allowed, as RunningHub is not known to reject them.
    """
    found: list[Violation] = []
    for param in spec.params:
        if param.name not in body or body[param.name] is None:
            if param.required:
                found.append(Violation(param.name, None, "is required", _describe(param)))
            continue
        found.extend(_check(param, body[param.name], image_sizes or {}))
    return found


def _check(param: ParamSpec, value: object, image_sizes: Mapping[str, int]) -> list[Violation]:
    if param.kind == "string":
        if not isinstance(value, str) or not value.strip():
            return [Violation(param.name, value, "must be a non-empty string", _describe(param))]
        if param.max_length is not None and len(value) > param.max_length:
            return [
                Violation(param.name, value, f"is {len(value)} characters long", _describe(param))
            ]
        return []
    if param.kind == "enum":
        if value not in param.choices:
            return [Violation(param.name, value, "is not allowed", _describe(param))]
        return []
    return _check_images(param, value, image_sizes)


def _check_images(
    param: ParamSpec, value: object, image_sizes: Mapping[str, int]
) -> list[Violation]:
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        return [Violation(param.name, value, "must be a list of image URLs", _describe(param))]
    if not value:
        return [Violation(param.name, value, "must not be empty", _describe(param))]
    if param.max_items is not None and len(value) > param.max_items:
        return [Violation(param.name, value, f"has {len(value)} images", _describe(param))]
    found = []
    for index, url in enumerate(value):
        field = f"{param.name}[{index}]"
        if not isinstance(url, str) or not url:
            found.append(Violation(field, url, "must be a URL string", _describe(param)))
            continue
        size = image_sizes.get(url)
        if size is not None and param.max_item_bytes is not None and size > param.max_item_bytes:
            found.append(Violation(field, url, f"is {size} bytes", _describe(param)))
    return found


def _describe(param: ParamSpec) -> str:
    if param.kind == "enum":
        return "one of " + ", ".join(param.choices)
    if param.kind == "string":
        limit = f" of at most {param.max_length} characters" if param.max_length else ""
        return f"a non-empty string{limit}"
    parts = ["a list of 1"]
    parts.append(f" to {param.max_items} image URLs" if param.max_items else " or more image URLs")
    if param.max_item_bytes:
        parts.append(f", each at most {param.max_item_bytes // MB} MB")
    return "".join(parts)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
