"""Checking a request body against a model's `EndpointSpec`, before any money is spent.

Pure functions over plain values: the client calls `violations` before it sends a
submit, and the fake server calls the same function to answer 1007, so the two
can never disagree about what is valid.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping, Sequence

from ._specs import EndpointSpec, ParamSpec, Violation

__all__ = ["COMMON_FIELDS", "closest", "data_uri_size", "describe", "violations"]

COMMON_FIELDS = frozenset({"webhookUrl"})
"""Body keys every model accepts besides its own params."""

MB = 1024 * 1024
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# File extensions (and data-URI subtypes) the format check understands, by the
# name the registry uses; anything else (no extension, ".php", ...) is not checked.
_FORMATS = {
    "jpg": "JPG", "jpeg": "JPG", "png": "PNG", "webp": "WEBP", "gif": "GIF",
    "bmp": "BMP", "tif": "TIFF", "tiff": "TIFF",
    "mp4": "MP4", "mov": "MOV", "quicktime": "MOV", "avi": "AVI", "x-msvideo": "AVI",
    "webm": "WEBM", "mkv": "MKV", "x-matroska": "MKV",
    "mp3": "MP3", "mpeg": "MP3", "wav": "WAV", "x-wav": "WAV", "wave": "WAV",
    "m4a": "M4A", "x-m4a": "M4A", "flac": "FLAC", "ogg": "OGG", "aac": "AAC",
}  # fmt: skip


def violations(
    spec: EndpointSpec,
    body: Mapping[str, object],
    *,
    image_sizes: Mapping[str, int] | None = None,
) -> list[Violation]:
    """Every way *body* breaks *spec*: params in the spec's order, then unknown names.

    Checks required params (None counts as not given), types (a bool is not a
    number, NaN and infinities are not numbers), enum values, numeric ranges and
    steps, string lengths, the number of files in a media param, each file's
    format (by its extension or data-URI type) and size, and refuses body keys
    the model does not have, suggesting the closest name.

    Media values may be URLs or data URIs (as sent), or local files about to be
    uploaded: ``os.PathLike``, bytes or binary file objects.

    Args:
        spec: the model's spec.
        body: the request body.
        image_sizes: sizes in bytes of media values where the caller knows them,
            keyed by the URL or ``os.fspath`` of a path (any media type, not only
            images).  Bytes values and base64 data URIs are measured here.
    """
    sizes = image_sizes or {}
    found: list[Violation] = []
    for param in spec.params:
        value = body.get(param.name)
        if value is None:
            if param.required:
                found.append(Violation(param.name, None, "is required", describe(param)))
            continue
        found.extend(_check(param, value, sizes))
    if not spec.open_params and not body.keys() <= spec.param_names:
        names = [p.name for p in spec.params]
        for key, value in body.items():
            if key not in spec.param_names and key not in COMMON_FIELDS and "##" not in key:
                found.append(_unknown(spec, key, value, names))
    return found


def closest(text: str, candidates: Sequence[str], n: int = 5) -> list[str]:
    """Up to *n* of *candidates* nearest to *text*, best first (case-insensitive)."""
    folded = {c.casefold(): c for c in candidates}
    key = text.casefold()
    exact = [folded[key]] if key in folded else []
    near = difflib.get_close_matches(key, list(folded), n=n, cutoff=0.5)
    out = exact + [folded[k] for k in near if folded[k] not in exact]
    return out[:n]


def _unknown(spec: EndpointSpec, key: str, value: object, names: list[str]) -> Violation:
    squashed = {n.replace("_", "").casefold(): n for n in names}
    guess = squashed.get(key.replace("_", "").casefold()) if isinstance(key, str) else None
    if guess is None:
        near = closest(str(key), names, 1)
        guess = near[0] if near else None
    hint = f"; did you mean {guess}?" if guess else ""
    allowed = ", ".join(names) if names else "no params"
    return Violation(str(key), value, f"is not a parameter of {spec.path}{hint}", allowed)


def _check(param: ParamSpec, value: object, sizes: Mapping[str, int]) -> list[Violation]:
    kind = param.type
    if kind == "string":
        return _check_string(param, value)
    if kind == "enum":
        return _check_enum(param, value)
    if kind in ("int", "float"):
        return _check_number(param, value)
    if kind == "bool":
        if isinstance(value, bool):
            return []
        return [Violation(param.name, value, "must be true or false", describe(param))]
    if param.is_media:
        return _check_media(param, value, sizes)
    return []


def _check_string(param: ParamSpec, value: object) -> list[Violation]:
    if not isinstance(value, str):
        return [Violation(param.name, value, "must be a string", describe(param))]
    if param.required and not value.strip():
        return [Violation(param.name, value, "must not be empty", describe(param))]
    if param.max_length is not None and len(value) > param.max_length:
        problem = f"is {len(value)} characters long"
        return [Violation(param.name, value, problem, describe(param))]
    return []


def _check_enum(param: ParamSpec, value: object) -> list[Violation]:
    allowed = param.allowed
    if isinstance(value, str) and (not allowed or value in allowed):
        return []
    if not isinstance(value, str):
        text = _as_text(value)
        if allowed and text in allowed:
            problem = f"must be the string {text!r}"
            return [Violation(param.name, value, problem, describe(param))]
        if not allowed:
            return [Violation(param.name, value, "must be a string", describe(param))]
    return [Violation(param.name, value, "is not allowed", describe(param))]


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _check_number(param: ParamSpec, value: object) -> list[Violation]:
    integer = param.type == "int"
    if isinstance(value, bool) or not isinstance(value, int | float):
        problem = "must be an integer" if integer else "must be a number"
        return [Violation(param.name, value, problem, describe(param))]
    if integer and not isinstance(value, int):
        return [Violation(param.name, value, "must be an integer", describe(param))]
    if isinstance(value, int):
        # No JSON reader on the other side takes more than 64 bits (a Java long), and
        # a larger int cannot even be compared with a float bound here.
        if not _INT64_MIN <= value <= _INT64_MAX:
            return [Violation(param.name, _short_int(value), "is too large", describe(param))]
    elif not math.isfinite(value):
        return [Violation(param.name, value, "must be a finite number", describe(param))]
    low, high, step = param.minimum, param.maximum, param.step
    if (low is not None and value < low) or (high is not None and value > high):
        return [Violation(param.name, value, "is out of range", describe(param))]
    if step and not _on_step(value, low or 0, step, integer):
        return [Violation(param.name, value, "is not on a step", describe(param))]
    return []


def _short_int(value: int) -> str:
    """A huge int as its size: its digits may be too many to print (or to read)."""
    return f"<int of {value.bit_length()} bits>"


def _on_step(value: float, base: float, step: float, integer: bool) -> bool:
    if integer and float(step).is_integer() and float(base).is_integer():
        return (int(value) - int(base)) % int(step) == 0
    ratio = (value - base) / step
    return abs(ratio - round(ratio)) <= 1e-6


def _check_media(param: ParamSpec, value: object, sizes: Mapping[str, int]) -> list[Violation]:
    is_list = isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray)
    if param.multiple != is_list:
        shape = "a list of files" if param.multiple else "one file, not a list"
        return [Violation(param.name, value, f"must be {shape}", describe(param))]
    items: Sequence[object] = value if isinstance(value, Sequence) and is_list else (value,)
    if param.multiple:
        if not items and param.required:
            return [Violation(param.name, value, "must not be empty", describe(param))]
        if param.max_items is not None and len(items) > param.max_items:
            problem = f"has {len(items)} files"
            return [Violation(param.name, value, problem, describe(param))]
    found = []
    for index, item in enumerate(items):
        field = f"{param.name}[{index}]" if param.multiple else param.name
        found.extend(_check_file(param, field, item, sizes))
    return found


def _check_file(
    param: ParamSpec, field: str, item: object, sizes: Mapping[str, int]
) -> list[Violation]:
    label: str | None = None
    size: int | None = None
    if isinstance(item, str):
        if not item.strip():
            return [Violation(field, item, "must not be empty", describe(param))]
        label, size = item, data_uri_size(item)
    elif isinstance(item, os.PathLike):
        label = os.fsdecode(os.fspath(item))
    elif isinstance(item, bytes | bytearray | memoryview):
        size = memoryview(item).nbytes
    elif not callable(getattr(item, "read", None)):
        problem = "must be a URL, a data URI or a local file"
        return [Violation(field, item, problem, describe(param))]
    if label is not None:
        size = sizes.get(label, size)
        fmt = _format_of(label)
        if fmt is not None and param.formats and fmt not in _normalised(param.formats):
            return [Violation(field, item, f"is a {fmt} file", describe(param))]
    if size is not None and param.max_bytes is not None and size > param.max_bytes:
        shown = label if label is not None else item
        return [Violation(field, shown, f"is {size} bytes", describe(param), too_large=True)]
    return []


def _normalised(formats: tuple[str, ...]) -> set[str]:
    return {_FORMATS.get(f.lower(), f.upper()) for f in formats}


def _format_of(label: str) -> str | None:
    if label[:5].lower() == "data:":
        mime = label[5:].partition(";")[0].partition(",")[0]
        return _FORMATS.get(mime.rpartition("/")[2].lower())
    path = label.partition("?")[0].partition("#")[0]
    tail = path.rpartition("/")[2]
    if "." not in tail:
        return None
    return _FORMATS.get(tail.rpartition(".")[2].lower())


def data_uri_size(value: str) -> int | None:
    """The decoded size in bytes of a base64 ``data:`` URI, or None for anything else."""
    if value[:5].lower() != "data:":
        return None
    meta, comma, payload = value.partition(",")
    if not comma or not meta.lower().endswith(";base64"):
        return None
    payload = payload.strip()
    return len(payload) * 3 // 4 - payload[-2:].count("=")


def describe(param: ParamSpec) -> str:
    """What *param* accepts, in words (the ``allowed`` of its violations)."""
    kind = param.type
    if kind == "enum":
        return "one of " + ", ".join(param.allowed) if param.allowed else "a string"
    if kind == "string":
        head = "a non-empty string" if param.required else "a string"
        return head + (f" of at most {param.max_length} characters" if param.max_length else "")
    if kind in ("int", "float"):
        text = "an integer" if kind == "int" else "a number"
        low, high = param.minimum, param.maximum
        if low is not None and high is not None:
            text += f" from {_num(low)} to {_num(high)}"
        elif low is not None:
            text += f" of at least {_num(low)}"
        elif high is not None:
            text += f" of at most {_num(high)}"
        if param.step and not (kind == "int" and param.step == 1):
            text += f" in steps of {_num(param.step)}"
        return text
    if kind == "bool":
        return "true or false"
    noun = f"{kind} URL"
    if param.multiple:
        count = f"1 to {param.max_items}" if param.max_items else "1 or more"
        text = f"a list of {count} {noun}s"
    else:
        text = f"one {noun}"
    if param.max_bytes:
        each = ", each" if param.multiple else ","
        text += f"{each} at most {_num(param.max_bytes / MB)} MB"
    if param.formats:
        text += " (" + ", ".join(param.formats) + ")"
    return text


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
