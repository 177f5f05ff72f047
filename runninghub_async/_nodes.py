"""The inputs of an AI app or a ComfyUI workflow run: `NodeInput`, parsed and checked locally.

A run's body is ``{"nodeInfoList": [{"nodeId", "fieldName", "fieldValue"}, ...]}``
(runninghub-api.md section 9).  Inputs come as a list of `NodeInput` or as a
mapping ``{"<nodeId>.<fieldName>": value}``; every key and value is checked here,
before anything is uploaded or sent.  RunningHub documents ``fieldValue`` as a
string, so numbers and booleans are sent as their text.  A local file (a
``pathlib.Path``, bytes or a binary file object) is uploaded by the client first,
and its upload's ``fileName`` is sent: that is what ``LoadImage``-style nodes take
(the documented use of ``fileName``; ``download_url`` is for standard models).
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from ._errors import InvalidParametersError, invalid_parameter

__all__ = [
    "NodeInput",
    "NodeInputs",
    "inputs_body",
    "is_local_file",
    "node_info_list",
    "parse_inputs",
    "run_path",
]

_NODE_ID: Final = re.compile(r"[A-Za-z0-9_:-]+")
_RUN_ID: Final = re.compile(r"[0-9]{1,40}")
_KINDS: Final = {"ai-app": "webapp_id", "workflow": "workflow_id"}
# Ints this short always convert to text: ``sys.set_int_max_str_digits`` takes
# no limit under 640 digits, and 2**2000 has 603.  Longer ones are tried.
_SAFE_INT_BITS: Final = 2000


def _node_id(value: object) -> Any:
    """Node ids are strings on the wire; an int id is taken as its text."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


@attrs.frozen
class NodeInput:
    """One input of an AI app or workflow run: a node's field and the value to give it.

    Attributes:
        node_id: the node's id in the app or workflow (``"12"``).
        field_name: the field of that node (``"image"``, ``"text"``, ``"seed"``).
        value: a str (sent as is: a text, a URL, an uploaded ``fileName``), an int,
            float or bool (sent as text), or a local file to upload first: a
            ``pathlib.Path``, bytes or a binary file object.
    """

    node_id: str = attrs.field(converter=_node_id)
    field_name: str
    value: Any


NodeInputs = Sequence[NodeInput] | Mapping[str, Any]
"""What ``submit_app`` and ``submit_workflow`` take as *inputs*."""


def is_local_file(value: object) -> bool:
    """Whether *value* is a local file to upload (a path, bytes or a binary file object)."""
    if isinstance(value, os.PathLike | bytes | bytearray | memoryview):
        return True
    return not isinstance(value, str | io.TextIOBase) and callable(getattr(value, "read", None))


def _bad(field: str, problem: str, value: object = None, allowed: str | None = None) -> Exception:
    return invalid_parameter(field, problem, value=value, allowed=allowed)


def _from_key(key: object) -> tuple[str, str]:
    if not isinstance(key, str):
        raise _bad("inputs", f"has a key that is not a str: {key!r}", key, "'<nodeId>.<fieldName>'")
    node_id, dot, field_name = key.partition(".")
    if not dot or not node_id.strip() or not field_name.strip():
        raise _bad(
            f"inputs[{key!r}]",
            "is not a '<nodeId>.<fieldName>' key",
            key,
            "keys like '12.image' or '6.text'",
        )
    return node_id.strip(), field_name.strip()


def _check(item: NodeInput, label: str) -> NodeInput:
    if not isinstance(item.node_id, str) or not _NODE_ID.fullmatch(item.node_id):
        raise _bad(
            f"{label}.node_id", "is not a node id", item.node_id, "letters, digits, ':', '_', '-'"
        )
    if not isinstance(item.field_name, str) or not item.field_name.strip():
        raise _bad(f"{label}.field_name", "must be a non-empty str", item.field_name)
    value = item.value
    if value is None:
        raise _bad(label, "has no value (None)", value, "a str, number, bool or local file")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(label, "is NaN or infinite", value, "a finite number")
    if isinstance(value, int) and value.bit_length() > _SAFE_INT_BITS:
        try:
            str(value)
        except ValueError:  # over the interpreter's int -> str digit limit
            raise _bad(
                label, "is an integer too large to send", f"<int of {value.bit_length()} bits>"
            ) from None
    if isinstance(value, str | int | float) or is_local_file(value):
        return item
    raise _bad(
        label,
        f"is a {type(value).__name__}, which a node field cannot take",
        value,
        "a str, number, bool, or a local file (pathlib.Path, bytes, binary file)",
    )


def parse_inputs(inputs: object) -> list[NodeInput]:
    """*inputs* (`NodeInput` items or a ``{"node.field": value}`` mapping) as checked items.

    Nothing is read, uploaded or sent.

    Raises:
        InvalidParametersError: a malformed key, node id or field name, a value a
            node field cannot take, or the same node field twice (``field`` names it).
        TypeError: *inputs* is neither a mapping nor a sequence of `NodeInput`.
    """
    items: list[tuple[NodeInput, str]] = []
    if isinstance(inputs, Mapping):
        for key, value in inputs.items():
            node_id, field_name = _from_key(key)
            items.append((NodeInput(node_id, field_name, value), f"inputs[{key!r}]"))
    elif isinstance(inputs, Iterable) and not isinstance(inputs, str | bytes):
        for index, item in enumerate(inputs):
            if not isinstance(item, NodeInput):
                raise TypeError(
                    f"inputs[{index}] is a {type(item).__name__}; expected a NodeInput "
                    "(or pass a mapping {'<nodeId>.<fieldName>': value})"
                )
            items.append((item, f"inputs[{index}]"))
    else:
        raise TypeError(
            "inputs must be a list of NodeInput or a mapping {'<nodeId>.<fieldName>': value}, "
            f"got {type(inputs).__name__}"
        )
    seen: set[tuple[str, str]] = set()
    checked = []
    for item, label in items:
        _check(item, label)
        pair = (item.node_id, item.field_name)
        if pair in seen:
            raise _bad(label, f"sets node {item.node_id} field {item.field_name!r} twice", pair)
        seen.add(pair)
        checked.append(item)
    return checked


def field_text(value: str | int | float) -> str:
    """A scalar as ``fieldValue`` text (``True`` is ``"true"``, like JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def node_info_list(inputs: Sequence[NodeInput]) -> list[dict[str, str]]:
    """The ``nodeInfoList`` of checked *inputs* whose local files were replaced by names.

    Raises:
        TypeError: a value is still a local file.
    """
    entries = []
    for item in inputs:
        if is_local_file(item.value):
            raise TypeError(
                f"node {item.node_id} field {item.field_name!r} is a local file: upload it "
                "first (client.upload(...).file_name), or use submit_app/submit_workflow"
            )
        value = field_text(item.value)
        entries.append({"nodeId": item.node_id, "fieldName": item.field_name, "fieldValue": value})
    return entries


def inputs_body(inputs: NodeInputs, **options: Any) -> dict[str, Any]:
    """The request body of an app or workflow run, for ``run_many`` of ``"run/ai-app/<id>"``.

    ``options`` are added as they are (``instanceType="plus"``)::

        bodies = (inputs_body({"52.text": p}) for p in prompts)
        async for item in client.run_many(f"run/ai-app/{app_id}", bodies): ...

    Local files are not uploaded here: upload them first with ``client.upload``
    and pass the upload's ``file_name``.

    Raises:
        InvalidParametersError: see `parse_inputs`.
        TypeError: a value is a local file, or *inputs* is not inputs.
    """
    body: dict[str, Any] = dict(options)
    body["nodeInfoList"] = node_info_list(parse_inputs(inputs))
    return body


def run_path(kind: str, run_id: object) -> str:
    """``run/<kind>/<id>``, the endpoint of an app (``ai-app``) or workflow run.

    Raises:
        InvalidParametersError: *run_id* is not an id (all digits).
    """
    field = _KINDS[kind]
    text = str(run_id).strip() if isinstance(run_id, str | int) else ""
    if isinstance(run_id, bool) or not _RUN_ID.fullmatch(text):
        raise InvalidParametersError(
            "local",
            f"{field} {run_id!r} is not a RunningHub id; allowed: digits",
            field=field,
            value=run_id,
            allowed="digits",
        )
    return f"run/{kind}/{text}"
