"""The commands ``run`` (any model), ``app``, ``workflow``, ``download`` and ``price``.

Arguments are checked before any key is looked up or any request is sent:
``--param NAME=VALUE`` values are JSON when they parse as JSON (``n=2``,
``flag=true``, ``urls=["https://..."]``), else strings (``prompt=a red fox``),
and the whole body is checked against the model's schema.  ``--input
NODE.FIELD=VALUE`` values are strings; ``@PATH`` names a local file to upload
(``@@`` for a literal ``@``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from .. import Job, JobResult, RunningHub, _catalog
from .._images import is_image_url
from .._json import MAX_DEPTH, depth_ok
from .._nodes import parse_inputs, run_path
from ._backend import ClientOptions, Target, open_session
from ._stop import Interrupted, Stop, unless_stopped

__all__ = [
    "JobRequest",
    "check_inputs",
    "check_model",
    "parse_input",
    "parse_param",
    "run_download",
    "run_job",
    "run_price",
]


def parse_param(text: str) -> tuple[str, Any]:
    """``NAME=VALUE``: VALUE as JSON when it parses, else as the string it is."""
    name, eq, raw = text.partition("=")
    if not eq or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    deep = f"{name.strip()}: the value nests JSON arrays or objects deeper than {MAX_DEPTH} levels"
    try:
        value: Any = json.loads(raw)
    except RecursionError:  # the decoder recurses: deep nesting exhausts the stack
        raise argparse.ArgumentTypeError(deep) from None
    except ValueError:
        value = raw
    if not depth_ok(value):  # no request could carry it (the wire's bound)
        raise argparse.ArgumentTypeError(deep)
    return name.strip(), value


def parse_input(text: str) -> tuple[str, Any]:
    """``NODE.FIELD=VALUE``: ``@PATH`` is a local file, ``@@...`` a literal ``@...``."""
    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise argparse.ArgumentTypeError(f"expected NODE.FIELD=VALUE, got {text!r}")
    value: Any = raw
    if raw.startswith("@@"):
        value = raw[1:]
    elif raw.startswith("@"):
        value = pathlib.Path(raw[1:])
    return key.strip(), value


def _local(value: Any) -> bool:
    return isinstance(value, os.PathLike)


def check_model(
    model: str, params: Sequence[tuple[str, Any]], images: Sequence[str]
) -> tuple[str, dict[str, Any]]:
    """The endpoint and body of ``run``/``price``: defaults filled, images placed, checked.

    Raises:
        ValueError: the problem, worded for the command line (the caller exits 2).
    """
    spec = _catalog.lookup(model)
    if spec is None:
        near = _catalog.default_catalog().closest(model, 3)
        hint = f"; did you mean: {', '.join(near)}?" if near else ""
        raise ValueError(f"unknown model {model!r}{hint} ('runninghub-async models' lists them)")
    body = dict(params)
    if images:
        field = next((p for p in spec.params if p.type == "image"), None)
        if field is None:
            raise ValueError(f"{spec.path} takes no image; omit --image")
        if not field.multiple and len(images) > 1:
            raise ValueError(f"{spec.path} takes one image ({field.name}), got {len(images)}")
        for value in images:
            if not is_image_url(value) and not os.path.isfile(value):
                raise ValueError(f"--image: no such file: {value!r}")
        values = [v if is_image_url(v) else pathlib.Path(v) for v in images]
        body[field.name] = values if field.multiple else values[0]
    for param in spec.params:
        if param.required and param.name not in body and param.default is not None:
            body[param.name] = param.default
    problems = _catalog.violations(spec, body)
    if problems:
        raise ValueError("; ".join(str(p) for p in problems))
    return spec.path, body


def check_inputs(kind: Literal["ai-app", "workflow"], run_id: str, inputs: Sequence[Any]) -> str:
    """The endpoint of an ``app``/``workflow`` run, after checking its id and inputs.

    Raises:
        ValueError: a bad id, input or missing file (the caller exits 2).
    """
    path = run_path(kind, run_id)
    mapping: dict[str, Any] = {}
    for key, value in inputs:
        if key in mapping:
            raise ValueError(f"--input {key} is given twice")
        if _local(value) and not os.path.isfile(value):
            raise ValueError(f"--input {key}: no such file: {os.fspath(value)!r}")
        mapping[key] = value
    parse_inputs(mapping)
    return path


@attrs.frozen(kw_only=True)
class JobRequest:
    """What ``run``, ``app`` or ``workflow`` was asked for.

    Attributes:
        endpoint: ``run``'s model path, or ``run/ai-app/<id>``, ``run/workflow/<id>``.
        params: ``run``'s body (local files as paths).
        inputs: ``app``/``workflow`` inputs by ``"node.field"``.
        output: where the files go; None prints the outputs instead.
    """

    endpoint: str
    params: Mapping[str, Any] = attrs.field(factory=dict)
    inputs: Mapping[str, Any] = attrs.field(factory=dict)
    output: str | None = None


async def _uploaded(client: RunningHub, params: Mapping[str, Any]) -> dict[str, Any]:
    """*params* with local files uploaded and replaced by their URLs."""
    body = dict(params)
    for name, value in params.items():
        if isinstance(value, list) and any(_local(v) for v in value):
            body[name] = [(await client.upload(v)).download_url if _local(v) else v for v in value]
        elif _local(value):
            body[name] = (await client.upload(value)).download_url
    return body


async def _submit(client: RunningHub, request: JobRequest) -> Job:
    run_id = request.endpoint.rpartition("/")[2]
    if request.endpoint.startswith("run/ai-app/"):
        return await client.submit_app(run_id, request.inputs)
    if request.endpoint.startswith("run/workflow/"):
        return await client.submit_workflow(run_id, request.inputs)
    return await client.submit(request.endpoint, await _uploaded(client, request.params))


def print_result(result: JobResult, paths: Sequence[pathlib.Path] | None) -> None:
    """The outputs (files written, or URLs and texts) and the cost."""
    if paths is not None:
        for path in paths:
            print(path)
    else:
        for n, output in enumerate(result.outputs):
            print(f"output {n}: {output.url or output.text or '(empty)'}")
    usage = result.usage
    if usage is not None and usage.consume_money is not None:
        print(f"cost {usage.consume_money}")


async def _follow(
    client: RunningHub,
    submit: Callable[[], Awaitable[Job]],
    output: str | None,
    stop: Stop,
) -> None:
    """Submit, print the task id at once, wait, and download or print the outputs."""
    try:
        job = await unless_stopped(stop.forced, submit)
    except Interrupted:
        raise Interrupted(
            "interrupted while submitting; RunningHub may have accepted the task: "
            "check your task list before trying again"
        ) from None
    print(f"task {job.task_id} submitted to {job.endpoint}", flush=True)
    resume = f"task {job.task_id} keeps running on RunningHub; download it later with: "
    resume += f"runninghub-async download {job.task_id} -o DIR"
    if stop.requested.is_set():
        raise Interrupted(f"interrupted; {resume}")
    try:
        result = await unless_stopped(stop.requested, job.wait)
        paths = None
        if output is not None:
            target = output
            paths = await unless_stopped(stop.requested, lambda: client.download(result, target))
    except Interrupted:
        raise Interrupted(f"interrupted; {resume}") from None
    print_result(result, paths)


async def run_job(target: Target, request: JobRequest, stop: Stop) -> int:
    """``run``, ``app`` or ``workflow``: one job, followed to its end.

    Raises:
        Interrupted: the user stopped it.
        RunningHubError, OSError, ValueError: the job or the download failed.
    """
    async with open_session(target, ClientOptions(max_in_flight=1)) as session:
        client = session.client
        await _follow(client, lambda: _submit(client, request), request.output, stop)
    return 0


async def run_download(target: Target, task_id: str, output: str, stop: Stop) -> int:
    """``download``: wait for a task (submitted earlier, anywhere) and save its files.

    Raises:
        TaskFailedError, TaskNotFoundError: the task failed or is unknown.
        RunningHubError, OSError: the wait or the download failed.
    """
    async with open_session(target, ClientOptions(max_in_flight=1)) as session:
        client = session.client
        job = client.attach(task_id)
        result = await unless_stopped(stop.requested, job.wait)
        paths = await unless_stopped(stop.requested, lambda: client.download(result, output))
    print_result(result, paths)
    return 0


async def run_price(target: Target, endpoint: str, params: Mapping[str, Any], stop: Stop) -> int:
    """``price``: what one call would cost, before spending anything.

    Raises:
        LookupError: no price is known for the model.
        RunningHubError: the preview failed.
    """
    async with open_session(target, ClientOptions(max_in_flight=1)) as session:
        client = session.client
        price = await unless_stopped(stop.requested, lambda: client.price(endpoint, params))
    where = (
        "RunningHub's price preview"
        if price.source == "api"
        else "the packaged catalog; it may be out of date"
    )
    print(f"{price.amount} {price.currency} per call of {endpoint} (from {where})")
    text = price.text_en or price.text
    if text:
        print(f"  {text}")
    return 0
