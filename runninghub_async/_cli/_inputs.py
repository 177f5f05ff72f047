"""A batch's input: prompts (one per line) or JSONL params, read lazily, turned into requests.

An item's ``key`` is its index plus a hash of the request it makes (endpoint and
body), so a re-run recognises the items it journaled, and an edited line or a
different ``--model`` counts as a new item rather than resuming a stale task.

Lines are bounded (`MAX_LINE_CHARS`): a longer one refuses the whole file before
anything is sent, since a file holding one is not a list of requests (a binary,
``/dev/zero``) and reading it whole would take unbounded memory.  A JSONL line
nested deeper than the wire allows (``_json.MAX_DEPTH``) is a bad item, like a
line that is not JSON.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
import os
from collections.abc import AsyncGenerator, Generator, Iterator, Mapping
from typing import Any

import anyio
import attrs

from .. import _catalog
from .._json import MAX_DEPTH, depth_ok

__all__ = [
    "MAX_LINE_CHARS",
    "Format",
    "Item",
    "LineTooLongError",
    "RequestBuilder",
    "count_items",
    "detect_format",
    "endpoint_of",
    "read_items",
]

# Lines handed from the reading thread to the event loop at a time (fewer when
# they are long: a chunk stops once it holds MAX_LINE_CHARS characters).
_CHUNK = 64

MAX_LINE_CHARS = 16 * 1024 * 1024
"""The longest line a batch file may hold, in characters (16 MiB).

A line is one request: the longest prompt any catalogued model takes is 20,480
characters, and a JSONL line of params with image URLs is a few kilobytes.  The
bound leaves room for an image inlined as a ``data:`` URI of about 12 MB (most
image models take 10 MB at most); larger files belong behind a URL.
"""


class LineTooLongError(ValueError):
    """A line of the batch file is longer than `MAX_LINE_CHARS`."""


class Format(enum.Enum):
    """How the lines of a batch file are read."""

    PROMPTS = "prompts"
    JSONL = "jsonl"


@attrs.frozen(kw_only=True)
class Item:
    """One request of a batch.

    Attributes:
        index: position among the file's items (blank lines do not count).
        line: the 1-based line number in the file.
        key: identity across runs (see the module docstring).
        endpoint: the endpoint path to submit to.
        params: the request body.
        problem: why the line could not become a request, if it could not.
    """

    index: int
    line: int
    key: str
    endpoint: str
    params: Mapping[str, Any]
    problem: str | None = None


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@attrs.frozen(kw_only=True)
class RequestBuilder:
    """Turns one input line into an `Item`: the model's endpoint, CLI defaults, schema defaults.

    Attributes:
        model: the default model: an image helper's model (a key of
            ``_catalog.MODELS``: an edit when the line has ``imageUrls``) or any
            catalogued model's path or name.  A JSONL line may name its own with
            a ``"model"`` key, which is not sent.
        aspect_ratio: ``aspectRatio`` for lines that do not set one.
        resolution: ``resolution`` for lines that do not set one.
    """

    model: str = _catalog.DEFAULT_MODEL
    aspect_ratio: str | None = None
    resolution: str | None = None

    def build(self, fmt: Format, index: int, line: int, text: str) -> Item:
        """The item of one non-blank line."""
        if fmt is Format.PROMPTS:
            return self.item(index, line, {"prompt": text.strip()})
        too_deep = f"line {line} is JSON nested deeper than {MAX_DEPTH} levels"
        try:
            value = json.loads(text)
        except RecursionError:  # the decoder recurses: deep nesting exhausts the stack
            return self._broken(index, line, text, too_deep)
        except ValueError as exc:
            return self._broken(index, line, text, f"line {line} is not valid JSON: {exc}")
        if not isinstance(value, dict):
            return self._broken(index, line, text, f"line {line} is not a JSON object")
        # Shallower than the stack but deeper than a request can be sent (and than
        # the digest, the journal and the summary recurse through safely).
        if not depth_ok(value):
            return self._broken(index, line, text, too_deep)
        return self.item(index, line, value)

    def item(self, index: int, line: int, fields: Mapping[str, Any]) -> Item:
        """The item for request *fields* (params, plus an optional ``"model"``)."""
        body = dict(fields)
        model = body.pop("model", self.model)
        endpoint = endpoint_of(model, edit="imageUrls" in body)
        if endpoint is None:
            near = _catalog.default_catalog().closest(str(model), 3)
            hint = f"; did you mean: {', '.join(near)}?" if near else ""
            problem = (
                f"line {line}: unknown model {model!r}{hint} "
                "('runninghub-async models' lists the known models)"
            )
            return self._broken(index, line, json.dumps(fields, default=str), problem)
        spec = _catalog.lookup(endpoint)
        if spec is not None:
            for name, value in (
                ("aspectRatio", self.aspect_ratio),
                ("resolution", self.resolution),
            ):
                if value is not None and name not in body and spec.param(name) is not None:
                    body[name] = value
            # Fill what the endpoint requires and documents a default for (the
            # resolution of most models), so a bare prompt is a valid request.
            for param in spec.params:
                if param.required and param.name not in body and param.default is not None:
                    body[param.name] = param.default
        key = f"{index}-{_digest({'endpoint': endpoint, 'params': body})}"
        return Item(index=index, line=line, key=key, endpoint=endpoint, params=body)

    def _broken(self, index: int, line: int, text: str, problem: str) -> Item:
        key = f"{index}-{_digest({'text': text})}"
        return Item(index=index, line=line, key=key, endpoint="", params={}, problem=problem)


def endpoint_of(model: object, *, edit: bool = False) -> str | None:
    """The endpoint of *model*: an image helper's model name, or any catalogued model."""
    if not isinstance(model, str):
        return None
    paths = _catalog.MODELS.get(model)
    if paths is not None:
        return paths[1] if edit else paths[0]
    spec = _catalog.lookup(model)
    return spec.path if spec is not None else None


def detect_format(path: str | os.PathLike[str], first_line: str | None) -> Format:
    """JSONL for ``.jsonl``/``.ndjson`` files or a first item starting with ``{``; else prompts."""
    suffix = os.fspath(path).lower().rpartition(".")[2]
    if suffix in ("jsonl", "ndjson"):
        return Format.JSONL
    if first_line is not None and first_line.lstrip().startswith("{"):
        return Format.JSONL
    return Format.PROMPTS


def _numbered_lines(path: str) -> Generator[tuple[int, str], None, None]:
    """``(line number, text)`` of every non-blank line, read as the consumer goes.

    Raises:
        LineTooLongError: a line is longer than `MAX_LINE_CHARS` (found before
            more than that is held in memory).
    """
    with open(path, encoding="utf-8-sig") as file:
        for number in itertools.count(1):
            # Universal newlines: whatever the file uses, a line read ends in "\n".
            text = file.readline(MAX_LINE_CHARS + 1)
            if not text:
                return
            if len(text) > MAX_LINE_CHARS and not text.endswith("\n"):
                raise LineTooLongError(
                    f"{path}: line {number} is longer than {MAX_LINE_CHARS:,} characters "
                    "(16 MiB); each line holds one prompt or one JSON object of params"
                )
            text = text.rstrip("\r\n")
            if text.strip():
                yield number, text


def _take(lines: Iterator[tuple[int, str]]) -> list[tuple[int, str]]:
    """The next chunk of *lines*: `_CHUNK` lines, or fewer holding `MAX_LINE_CHARS` characters."""
    chunk: list[tuple[int, str]] = []
    size = 0
    for number, text in lines:
        chunk.append((number, text))
        size += len(text)
        if len(chunk) >= _CHUNK or size >= MAX_LINE_CHARS:
            break
    return chunk


def _scan(path: str) -> tuple[int, str | None]:
    count, first = 0, None
    for _, text in _numbered_lines(path):
        if first is None:
            first = text
        count += 1
    return count, first


async def count_items(path: str | os.PathLike[str]) -> tuple[int, Format]:
    """How many items the file holds, and its format (one pass, constant memory).

    Raises:
        OSError: the file cannot be read.
        LineTooLongError: a line is longer than `MAX_LINE_CHARS`.
        ValueError: it is not UTF-8 text.
    """
    try:
        count, first = await anyio.to_thread.run_sync(_scan, os.fspath(path))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{os.fspath(path)} is not UTF-8 text ({exc.reason})") from exc
    return count, detect_format(path, first)


async def read_items(
    path: str | os.PathLike[str], fmt: Format, builder: RequestBuilder
) -> AsyncGenerator[Item, None]:
    """The file's items in order, read in small chunks in a worker thread.

    Only the chunk being handed out is in memory, whatever the size of the file.
    """
    lines = _numbered_lines(os.fspath(path))
    index = 0
    try:
        while True:
            chunk = await anyio.to_thread.run_sync(_take, lines)
            if not chunk:
                return
            for number, text in chunk:
                yield builder.build(fmt, index, number, text)
                index += 1
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lines.close)
