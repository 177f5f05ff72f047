"""The wire's JSON: strict encoding of what is sent, bounded decoding of what comes back.

Sent bodies refuse NaN, infinities and anything JSON cannot carry (with the reason
in words, for the caller's error).  Answers are parsed with a nesting bound, so a
hostile body is a `ProtocolError`, never a `RecursionError`.  Task ids are checked
here too: they come from answers and go into file names and keys.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ._errors import ProtocolError

__all__ = [
    "MAX_DEPTH",
    "UNENCODABLE",
    "decode_json",
    "depth_ok",
    "encode_json",
    "is_task_id",
    "too_deep",
    "unencodable",
]

MAX_DEPTH: Final = 64

# Built once: ``json.dumps`` with options builds an encoder on every call.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_DECODER: Final = json.JSONDecoder()


def encode_json(value: Any) -> bytes:
    """*value* as strict JSON bytes (NaN, infinity and non-JSON types refused).

    Raises:
        ValueError: NaN or infinity, a value that contains itself, an int with more
            digits than ``sys.get_int_max_str_digits()`` allows, or text with a lone
            surrogate (`UnicodeEncodeError`: UTF-8 cannot carry it).
        TypeError: a value JSON cannot represent (a set, a Decimal, a Path, ...).
        RecursionError: nesting deeper than the interpreter's recursion limit.
    """
    return _ENCODER.encode(value).encode()


def is_task_id(text: str) -> bool:
    """Whether *text* looks like a RunningHub task id: ASCII digits (19 today), 40 at most.

    Ids go into file names, journal keys and Redis keys: anything else is refused,
    whoever sent it.
    """
    return 0 < len(text) <= 40 and text.isascii() and text.isdigit()


# What `encode_json` raises for a value it cannot send.
UNENCODABLE: Final = (TypeError, ValueError, RecursionError)


def unencodable(value: Any, error: BaseException) -> str:
    """Why *value* cannot be sent as JSON, from what `encode_json` raised (*error*)."""
    if isinstance(error, UnicodeError):
        return "has text with a lone surrogate, which UTF-8 cannot carry"
    if isinstance(error, RecursionError):
        return "is nested too deeply to send"
    if isinstance(error, ValueError):
        if "ircular" in str(error):  # json's "Circular reference detected"
            return "contains itself"
        if "integer string conversion" in str(error):  # int -> str over the digit limit
            return "is or holds an integer too large to send"
        return "is or holds a NaN or infinite number"
    if isinstance(value, list | tuple | dict):
        return f"holds a value JSON cannot carry ({error})"
    return f"is a {type(value).__name__}, which JSON cannot carry"


def depth_ok(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return True


def decode_json(raw: bytes | str, what: str, *, check_depth: bool = True) -> Any:
    """Parse *raw* (bytes not in UTF-8 are read with replacement characters),
    refusing nesting deeper than `MAX_DEPTH` (unless the caller checks it later).

    Raises:
        ProtocolError: not JSON, or nested too deeply.
    """
    if isinstance(raw, str):
        text = raw
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise ProtocolError(f"{what} answered with malformed JSON") from None
    # Fewer brackets than the bound cannot nest deeper than it: skip the walk.
    if check_depth and text.count("[") + text.count("{") > MAX_DEPTH and not depth_ok(value):
        raise too_deep(what)
    return value


def too_deep(what: str) -> ProtocolError:
    return ProtocolError(f"{what} answered with JSON nested deeper than {MAX_DEPTH}")
