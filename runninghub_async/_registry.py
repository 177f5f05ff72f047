"""Catalog data: RunningHub's registry format to our compact format, and that to specs.

RunningHub publishes its model registry (``model-registry.public.json``, one
entry per model with ``endpoint``, ``output_type`` and ``params``) and a pricing
summary (``pricing.public.json``).  `compact` keeps only the facts validation
needs (no descriptions) under short keys; the package ships the result as
``_data/catalog.json``, written by ``tools/gen_catalog.py``.  `specs` turns
either format into `EndpointSpec` values.

Compact format (``"format": FORMAT``), one object per model under ``"models"``:
``e`` endpoint, ``n`` documented names, ``o`` output type, ``c`` category,
``x`` 1 when the registry lists no params, ``p`` params, ``$`` price.
A param: ``k`` name, ``t`` type, ``r`` required, ``v`` enum values, ``d``
default, ``lo``/``hi``/``st`` range and step, ``ml`` max length, ``ls`` takes a
list, ``mx`` max items, ``mb`` max size in MB, ``f`` formats.  A price: ``u``
unit, and ``p`` a fixed price, or ``on`` param names and ``r`` rules
``[[values...], price]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ._specs import EndpointSpec, ParamSpec

__all__ = ["FORMAT", "compact", "compact_model", "specs"]

FORMAT = "runninghub-async-catalog/1"
"""The ``format`` value of compact catalog data."""

MB = 1024 * 1024

Json = dict[str, Any]

_TYPES = {
    "STRING": "string",
    "LIST": "enum",
    "INT": "int",
    "FLOAT": "float",
    "BOOLEAN": "bool",
    "IMAGE": "image",
    "VIDEO": "video",
    "AUDIO": "audio",
}
_MEDIA = frozenset({"image", "video", "audio"})
_UNITS = {
    "/次": "call",
    "/张": "image",
    "/秒": "second",
    "/second": "second",
    "/秒起": "second (minimum)",
    "/5秒": "5 seconds",
    "/1000字符": "1000 characters",
}


def compact(
    registry: Mapping[str, Any],
    pricing: Mapping[str, Any] | None = None,
    *,
    source: str = "",
    license: str = "",
) -> Json:
    """Compact catalog data from a registry document (and optionally a pricing one).

    Models come out sorted by endpoint, so the output is stable.
    """
    prices = {
        str(entry.get("endpoint")): entry
        for entry in (pricing or {}).get("pricing", ())
        if isinstance(entry, Mapping)
    }
    models = [
        compact_model(model, prices.get(str(model.get("endpoint"))))
        for model in registry.get("models", ())
        if isinstance(model, Mapping) and model.get("endpoint")
    ]
    models.sort(key=lambda m: m["e"])
    data: Json = {"format": FORMAT}
    if source:
        data["source"] = source
    if license:
        data["license"] = license
    data["models"] = models
    return data


def compact_model(model: Mapping[str, Any], price: Mapping[str, Any] | None = None) -> Json:
    """One registry model (and its pricing entry) in the compact format."""
    path = str(model["endpoint"]).strip("/")
    names: list[str] = []
    for key in ("name_en", "name_cn"):
        name = model.get(key)
        if isinstance(name, str) and name and name != path and name not in names:
            names.append(name)
    output = str(model.get("output_type") or "")
    out: Json = {"e": path}
    if names:
        out["n"] = names
    out["o"] = "text" if output == "string" else output
    category = str(model.get("category") or "").removeprefix("RunningHub/")
    if category:
        out["c"] = category
    raw_params = [p for p in model.get("params") or () if isinstance(p, Mapping)]
    if raw_params:
        out["p"] = [_compact_param(p) for p in raw_params if p.get("fieldKey")]
    else:
        out["x"] = 1
    if price is not None:
        compacted = _compact_price(price)
        if compacted is not None:
            out["$"] = compacted
    return out


def _compact_param(raw: Mapping[str, Any]) -> Json:
    kind = _TYPES.get(str(raw.get("type")), str(raw.get("type", "string")).lower())
    name = str(raw["fieldKey"])
    out: Json = {"k": name, "t": kind}
    if raw.get("required"):
        out["r"] = 1
    options = raw.get("options")
    if kind == "enum" and isinstance(options, list):
        out["v"] = [str(o["value"]) for o in options if isinstance(o, Mapping) and "value" in o]
    default = raw.get("defaultValue")
    if default is not None and _keeps_default(kind, default):
        out["d"] = default
    for src, dst in (("min", "lo"), ("max", "hi"), ("step", "st"), ("maxLength", "ml")):
        value = raw.get(src)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[dst] = value
    if kind in _MEDIA:
        multiple = raw.get("multipleInputs")
        if multiple is None:  # not stated: plural names take lists
            multiple = name.endswith(("s", "List"))
        if multiple:
            out["ls"] = 1
            count = raw.get("maxInputNum")
            if isinstance(count, int) and not isinstance(count, bool) and count > 0:
                out["mx"] = count
        size = raw.get("maxSize")
        if isinstance(size, int | float) and not isinstance(size, bool) and size > 0:
            out["mb"] = size
        formats = _formats(raw.get("accept"))
        if formats:
            out["f"] = formats
    return out


def _keeps_default(kind: str, default: object) -> bool:
    # String defaults are mostly sample prompts (prose, not facts); keep only
    # identifier-like ones such as a voice id.
    if kind == "string":
        return (
            isinstance(default, str)
            and 0 < len(default) <= 64
            and default.isascii()
            and not any(c.isspace() for c in default)
        )
    return kind not in _MEDIA


def _formats(accept: object) -> list[str]:
    values: object = accept
    if isinstance(accept, str):
        try:
            values = json.loads(accept)
        except ValueError:
            values = [part.strip() for part in accept.split(",")]
    if not isinstance(values, list):
        return []
    return [str(f).upper() for f in values if str(f).strip()]


def _compact_price(entry: Mapping[str, Any]) -> Json | None:
    unit = _UNITS.get(str(entry.get("unit")))
    if unit is None or entry.get("currency", "CNY") != "CNY":
        return None
    price = entry.get("price")
    if isinstance(price, int | float) and not isinstance(price, bool):
        return {"u": unit, "p": price}
    names = entry.get("depends_on")
    rules = entry.get("rules")
    if not isinstance(names, list) or not isinstance(rules, list) or not names:
        return None
    table = []
    for rule in rules:
        when, cost = rule.get("when"), rule.get("price")
        if isinstance(when, Mapping) and isinstance(cost, int | float):
            table.append([[str(when.get(n, "")) for n in names], cost])
    return {"u": unit, "on": [str(n) for n in names], "r": table} if table else None


def specs(data: Mapping[str, Any]) -> list[EndpointSpec]:
    """The specs in catalog *data*: compact format, or a registry document.

    Raises:
        ValueError: *data* is neither.
    """
    if data.get("format") == FORMAT:
        models: Iterable[Any] = data.get("models", ())
    elif isinstance(data.get("models"), list):
        models = compact(data)["models"]
    else:
        raise ValueError("not catalog data: expected a RunningHub registry or compact catalog")
    return [_spec(m) for m in models if isinstance(m, Mapping)]


def _spec(model: Mapping[str, Any]) -> EndpointSpec:
    path = str(model["e"])
    names = tuple(str(n) for n in model.get("n", ()))
    price_entry = model.get("$")
    price: float | None = None
    unit: str | None = None
    rules: tuple[tuple[str, ...], tuple[tuple[tuple[str, ...], float], ...]] | None = None
    if isinstance(price_entry, Mapping):
        unit = str(price_entry.get("u"))
        if "p" in price_entry:
            fixed = float(price_entry["p"])
            price = fixed if unit in ("call", "image") else None
            if price is None:
                rules = ((), (((), fixed),))
        else:
            rules = (
                tuple(price_entry["on"]),
                tuple((tuple(values), float(cost)) for values, cost in price_entry["r"]),
            )
    return EndpointSpec(
        path=path,
        name=names[0] if names else path,
        names=names,
        output_type=str(model.get("o", "")),
        category=str(model.get("c", "")),
        params=tuple(_param(p) for p in model.get("p", ())),
        price=price,
        price_unit=unit,
        price_rules=rules,
        open_params=bool(model.get("x")),
    )


def _param(raw: Mapping[str, Any]) -> ParamSpec:
    values = raw.get("v")
    size = raw.get("mb")
    multiple = bool(raw.get("ls"))
    media = raw["t"] in _MEDIA
    return ParamSpec(
        name=str(raw["k"]),
        type=str(raw["t"]),
        required=bool(raw.get("r")),
        allowed=tuple(values) if values is not None else None,
        minimum=raw.get("lo"),
        maximum=raw.get("hi"),
        step=raw.get("st"),
        default=raw.get("d"),
        max_length=raw.get("ml"),
        multiple=multiple,
        max_items=raw.get("mx") if multiple else (1 if media else None),
        max_bytes=round(size * MB) if size is not None else None,
        formats=tuple(raw.get("f", ())),
    )
