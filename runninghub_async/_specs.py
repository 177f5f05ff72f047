"""What one catalogued model accepts: `EndpointSpec`, `ParamSpec`, and `Violation`.

These are plain frozen values built from the packaged catalog data (see
``_registry.py``); the checks against them live in ``_checks.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["MEDIA_TYPES", "OUTPUT_TYPES", "PARAM_TYPES", "EndpointSpec", "ParamSpec", "Violation"]

PARAM_TYPES = ("string", "enum", "int", "float", "bool", "image", "video", "audio")
"""Every `ParamSpec.type`: RunningHub's STRING, LIST, INT, FLOAT, BOOLEAN, IMAGE, VIDEO, AUDIO."""

MEDIA_TYPES = frozenset({"image", "video", "audio"})
"""The param types whose values are files: URLs, data URIs, or local files to upload."""

OUTPUT_TYPES = ("image", "video", "audio", "text", "3d")
"""Every `EndpointSpec.output_type`."""


@attrs.frozen
class ParamSpec:
    """One body parameter of a model, as RunningHub's registry documents it.

    Attributes:
        name: the body key, camelCase or snake_case exactly as the API spells it.
        type: one of `PARAM_TYPES`: ``"string"``, ``"enum"``, ``"int"``,
            ``"float"``, ``"bool"``, ``"image"``, ``"video"`` or ``"audio"``.
        required: the registry marks it required.
        allowed: the allowed values of an ``"enum"`` (strings), else None.
        minimum: the smallest allowed number, or None.
        maximum: the largest allowed number, or None.
        step: numbers must be ``minimum + k * step`` (``0 + k * step`` without a
            minimum), or None.
        default: the documented default, or None.
        max_length: the longest allowed string, in characters, or None.
        multiple: a media param that takes a list of files (else one file).
        max_items: how many files a media param takes at most, or None.
        max_bytes: the largest allowed file of a media param, in bytes, or None.
        formats: the accepted file formats of a media param (``("JPG", "PNG")``).
    """

    name: str
    type: str
    required: bool = False
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    default: object = None
    max_length: int | None = None
    multiple: bool = False
    max_items: int | None = None
    max_bytes: int | None = None
    formats: tuple[str, ...] = ()

    @property
    def choices(self) -> tuple[str, ...]:
        """The allowed values of an enum, or ``()`` (what `allowed` says, never None)."""
        return self.allowed or ()

    @property
    def is_media(self) -> bool:
        """Whether values are files (an image, video or audio param)."""
        return self.type in MEDIA_TYPES


@attrs.frozen
class EndpointSpec:
    """A catalogued RunningHub model: its endpoint, names, output and params.

    Attributes:
        path: the endpoint below ``/openapi/v2/`` (``"kling-v3.0-pro/image-to-video"``).
        name: the documented English name (``"kling-v3.0-pro-image-to-video"``).
        names: every documented name (English, Chinese), ``name`` first.
        output_type: what a run makes: one of `OUTPUT_TYPES`.
        category: the registry's family, e.g. ``"Kling"``.
        params: the body parameters, in the registry's order.
        price: CNY for one call where the pricing file gives a fixed price
            per call (or per image), else None.
        price_unit: what a price is per: ``"call"``, ``"image"``, ``"second"``,
            ``"5 seconds"``, ``"1000 characters"``, or None when unknown.
        price_rules: for prices that depend on params: the param names, and
            ``(values, price)`` rules, one value per name.
        open_params: the registry lists no params (ComfyUI-style ``"<node>##<field>"``
            bodies), so unknown names are not refused.
    """

    path: str
    name: str
    params: tuple[ParamSpec, ...]
    names: tuple[str, ...] = ()
    output_type: str = "image"
    category: str = ""
    price: float | None = None
    price_unit: str | None = None
    price_rules: tuple[tuple[str, ...], tuple[tuple[tuple[str, ...], float], ...]] | None = None
    open_params: bool = False
    _by_name: Mapping[str, ParamSpec] = attrs.field(init=False, repr=False, eq=False)
    param_names: frozenset[str] = attrs.field(init=False, repr=False, eq=False)
    """The names of `params` (a set: the check for unknown names is one set difference)."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {p.name: p for p in self.params})
        object.__setattr__(self, "param_names", frozenset(self._by_name))

    @property
    def endpoint(self) -> str:
        """The endpoint path (the same as `path`)."""
        return self.path

    @property
    def media_fields(self) -> tuple[str, ...]:
        """The names of the params that take files (image, video, audio)."""
        return tuple(p.name for p in self.params if p.is_media)

    def param(self, name: str) -> ParamSpec | None:
        """The spec of body parameter *name*, or None when the endpoint has no such param."""
        return self._by_name.get(name)

    def price_for(self, params: Mapping[str, object]) -> float | None:
        """CNY per `price_unit` for a call with *params*, where the pricing file says.

        A fixed price is returned as is.  A price that depends on params uses each
        named param's value from *params*, or its default; None when no rule matches.
        """
        if self.price_rules is None:
            return self.price
        names, rules = self.price_rules
        key = []
        for name in names:
            value = params.get(name)
            if value is None:
                spec = self.param(name)
                value = spec.default if spec is not None else None
            key.append(_price_key(value))
        wanted = tuple(key)
        for values, price in rules:
            if values == wanted:
                return price
        return None


def _price_key(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


@attrs.frozen
class Violation:
    """One way a request body breaks its model's schema.

    Attributes:
        field: the body key, with ``[i]`` for one item of a list (``"imageUrls[2]"``).
        value: the offending value (None when a required field is missing).
        problem: what is wrong (``"is not allowed"``, ``"is required"``, ...).
        allowed: what would be accepted, in words.
        too_large: the value is a file over the model's size limit.
    """

    field: str
    value: object
    problem: str
    allowed: str
    too_large: bool = False

    def __str__(self) -> str:
        if self.problem == "is required":
            return f"{self.field} is required ({self.allowed})"
        if self.problem.startswith("is not a parameter"):
            return f"{self.field} {self.problem} (it takes: {self.allowed})"
        return f"{self.field}={_short(self.value)} {self.problem}; allowed: {self.allowed}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
