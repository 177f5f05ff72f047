"""The AI apps and ComfyUI workflows the fake knows, and how ``nodeInfoList`` is checked.

An app is its list of editable nodes (what ``/api/webapp/apiCallDemo`` shows);
a workflow is its API-format prompt (what ``/api/openapi/getJsonApiFormat``
returns).  A ``nodeInfoList`` entry must name a node and a field the app lists,
or a node of the workflow and one of that node's ``inputs``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

__all__ = [
    "AppNode",
    "FakeApp",
    "NodeInput",
    "Registry",
    "default_apps",
    "default_workflows",
    "parse_node_info_list",
]

_SCALARS = (str, int, float, bool)


@attrs.frozen
class AppNode:
    """One editable node field of an AI app, as ``apiCallDemo`` lists it."""

    node_id: str
    field_name: str
    field_value: str = ""
    node_name: str = ""
    field_type: str = "STRING"
    description: str = ""

    def as_json(self) -> dict[str, Any]:
        """The ``nodeInfoList`` item ``apiCallDemo`` answers."""
        return {
            "nodeId": self.node_id,
            "nodeName": self.node_name,
            "fieldName": self.field_name,
            "fieldValue": self.field_value,
            "fieldData": "",
            "fieldType": self.field_type,
            "description": self.description,
            "descriptionEn": self.description,
        }


@attrs.frozen
class FakeApp:
    """An AI app: its id, display name and editable nodes."""

    webapp_id: str
    name: str
    nodes: tuple[AppNode, ...]

    def fields(self) -> frozenset[tuple[str, str]]:
        """The ``(nodeId, fieldName)`` pairs a ``nodeInfoList`` may set."""
        return frozenset((n.node_id, n.field_name) for n in self.nodes)


@attrs.frozen
class NodeInput:
    """One well-formed ``nodeInfoList`` entry."""

    node_id: str
    field_name: str
    field_value: object


def _node(item: Mapping[str, object]) -> AppNode:
    node_id, field_name = item.get("nodeId"), item.get("fieldName")
    if not isinstance(node_id, str | int) or not isinstance(field_name, str) or not field_name:
        raise ValueError(f"an app node needs a nodeId and a fieldName, got {dict(item)!r}")
    return AppNode(
        node_id=str(node_id),
        field_name=field_name,
        field_value=str(item.get("fieldValue", "")),
        node_name=str(item.get("nodeName", "")),
        field_type=str(item.get("fieldType", "STRING")),
        description=str(item.get("description", "")),
    )


def _check_prompt(workflow_id: str, prompt: Mapping[str, object]) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    # A deep copy through JSON: the fake must answer exactly what it can serialise,
    # and later changes to the caller's dict must not leak in.
    try:
        prompt = json.loads(json.dumps(dict(prompt)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"workflow {workflow_id} is not JSON-serialisable: {exc}") from exc
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            raise ValueError(f"workflow {workflow_id}: node {node_id!r} needs an 'inputs' object")
        checked[str(node_id)] = node
    if not checked:
        raise ValueError(f"workflow {workflow_id} has no nodes")
    return checked


def parse_node_info_list(value: object) -> tuple[list[NodeInput], list[str]]:
    """The entries of a ``nodeInfoList`` and the problems that make it malformed.

    Missing or null means no entries.  Each entry must be an object with a
    ``nodeId`` (string or integer), a non-empty ``fieldName`` string and a
    ``fieldValue`` that is a string, number or boolean.
    """
    if value is None:
        return [], []
    if not isinstance(value, list):
        return [], ["nodeInfoList must be an array"]
    entries: list[NodeInput] = []
    problems: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            problems.append(f"nodeInfoList[{index}] must be an object")
            continue
        node_id, field_name = item.get("nodeId"), item.get("fieldName")
        missing = [k for k in ("nodeId", "fieldName", "fieldValue") if k not in item]
        if missing:
            problems.append(f"nodeInfoList[{index}] lacks {', '.join(missing)}")
        elif isinstance(node_id, bool) or not isinstance(node_id, str | int) or node_id == "":
            problems.append(f"nodeInfoList[{index}].nodeId must be a non-empty string")
        elif not isinstance(field_name, str) or not field_name:
            problems.append(f"nodeInfoList[{index}].fieldName must be a non-empty string")
        elif not isinstance(item["fieldValue"], _SCALARS):
            problems.append(f"nodeInfoList[{index}].fieldValue must be a string, number or boolean")
        else:
            entries.append(NodeInput(str(node_id), field_name, item["fieldValue"]))
    return entries, problems


def workflow_mismatches(prompt: Mapping[str, Any], entries: Iterable[NodeInput]) -> list[str]:
    """Entries naming a node the workflow lacks, or a field that node has no input for."""
    problems = []
    for entry in entries:
        node = prompt.get(entry.node_id)
        if node is None:
            problems.append(f"node {entry.node_id} is not in the workflow")
        elif entry.field_name not in node["inputs"]:
            problems.append(f"node {entry.node_id} has no input {entry.field_name!r}")
    return problems


def app_mismatches(app: FakeApp, entries: Iterable[NodeInput]) -> list[str]:
    """Entries naming a node field the app does not expose."""
    fields = app.fields()
    return [
        f"node {e.node_id} field {e.field_name!r} is not editable in app {app.webapp_id}"
        for e in entries
        if (e.node_id, e.field_name) not in fields
    ]


class Registry:
    """The apps and workflows one fake serves; tests add more while it runs."""

    def __init__(
        self,
        apps: Mapping[str, Iterable[Mapping[str, object]]],
        workflows: Mapping[str, Mapping[str, object]],
    ) -> None:
        self._apps: dict[str, FakeApp] = {}
        self._workflows: dict[str, dict[str, Any]] = {}
        for webapp_id, nodes in apps.items():
            self.add_app(webapp_id, nodes)
        for workflow_id, prompt in workflows.items():
            self.add_workflow(workflow_id, prompt)

    @property
    def apps(self) -> Mapping[str, FakeApp]:
        """Known apps by ``webappId``."""
        return MappingProxyType(self._apps)

    @property
    def workflows(self) -> Mapping[str, Mapping[str, Any]]:
        """Known workflows' API-format prompts by ``workflowId``."""
        return MappingProxyType(self._workflows)

    def add_app(
        self, webapp_id: str | int, nodes: Iterable[Mapping[str, object]], name: str | None = None
    ) -> FakeApp:
        """Register (or replace) an app whose editable nodes are *nodes*.

        Raises:
            ValueError: a node lacks ``nodeId`` or ``fieldName``.
        """
        key = str(webapp_id)
        app = FakeApp(key, name or f"Fake app {key}", tuple(_node(n) for n in nodes))
        self._apps[key] = app
        return app

    def add_workflow(self, workflow_id: str | int, prompt: Mapping[str, object]) -> None:
        """Register (or replace) a workflow given as an API-format prompt.

        Raises:
            ValueError: a node is not an object with an ``inputs`` object.
        """
        key = str(workflow_id)
        self._workflows[key] = _check_prompt(key, prompt)

    def prompt_json(self, workflow_id: str) -> str | None:
        """The workflow as the JSON string ``getJsonApiFormat`` answers in ``data.prompt``."""
        prompt = self._workflows.get(workflow_id)
        return None if prompt is None else json.dumps(prompt, ensure_ascii=False)


def _txt2img() -> dict[str, Any]:
    return {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 156680208700286,
                "steps": 20,
                "cfg": 8,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"},
        },
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 512, "height": 512, "batch_size": 1},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {
            "class_type": "SaveImage",
            "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]},
        },
    }


def _img2img() -> dict[str, Any]:
    prompt = _txt2img()
    prompt["10"] = {"class_type": "LoadImage", "inputs": {"image": "example.png"}}
    prompt["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}
    prompt["3"]["inputs"]["latent_image"] = ["11", 0]
    prompt["3"]["inputs"]["denoise"] = 0.6
    del prompt["5"]
    return prompt


def default_apps() -> dict[str, tuple[dict[str, object], ...]]:
    """Apps every fake knows unless replaced (made-up ids: the docs show none)."""
    return {
        "1937084629516193794": (
            {
                "nodeId": "12",
                "nodeName": "LoadImage",
                "fieldName": "image",
                "fieldValue": "openapi/example.png",
                "fieldType": "IMAGE",
                "description": "image",
            },
            {
                "nodeId": "52",
                "nodeName": "CLIPTextEncode",
                "fieldName": "text",
                "fieldValue": "make it a watercolour",
                "fieldType": "STRING",
                "description": "prompt",
            },
        ),
        "1877265245566922753": (
            {
                "nodeId": "6",
                "nodeName": "CLIPTextEncode",
                "fieldName": "text",
                "fieldValue": "a red fox in the snow",
                "fieldType": "STRING",
                "description": "prompt",
            },
            {
                "nodeId": "5",
                "nodeName": "EmptyLatentImage",
                "fieldName": "width",
                "fieldValue": "1024",
                "fieldType": "INT",
                "description": "width",
            },
            {
                "nodeId": "5",
                "nodeName": "EmptyLatentImage",
                "fieldName": "height",
                "fieldValue": "1024",
                "fieldType": "INT",
                "description": "height",
            },
        ),
    }


def default_workflows() -> dict[str, dict[str, Any]]:
    """Workflows every fake knows unless replaced: text-to-image and image-to-image."""
    return {"1904163390028185602": _txt2img(), "1947598452328525826": _img2img()}
