"""The one-job commands: ``generate``, ``status`` and ``account``."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import anyio
import attrs

from .. import Job, JobResult, RunningHub, TaskSnapshot, TaskStatus
from .._images import is_image_url
from ._backend import ClientOptions, Target, open_session
from ._stop import Interrupted, Stop, unless_stopped

__all__ = [
    "GenerateRequest",
    "describe_snapshot",
    "image_inputs",
    "run_account",
    "run_generate",
    "run_status",
]


def image_inputs(values: Sequence[str]) -> list[str | os.PathLike[str]]:
    """``--image`` values as the library takes them: URLs as str, anything else as a local path."""
    return [value if is_image_url(value) else pathlib.Path(value) for value in values]


@attrs.frozen(kw_only=True)
class GenerateRequest:
    """What ``generate`` was asked for."""

    prompt: str
    model: str
    aspect_ratio: str | None
    resolution: str | None
    images: tuple[str | os.PathLike[str], ...]
    output: str


async def _submit(client: RunningHub, request: GenerateRequest) -> Job:
    if request.images:
        return await client.submit_edit_image(
            request.prompt,
            list(request.images),
            model=request.model,
            aspect_ratio=request.aspect_ratio,
            resolution=request.resolution,
        )
    return await client.submit_text_to_image(
        request.prompt,
        model=request.model,
        aspect_ratio=request.aspect_ratio,
        resolution=request.resolution,
    )


async def run_generate(target: Target, request: GenerateRequest, stop: Stop) -> int:
    """Submit one job, print its task id at once, wait for it and download its files.

    Ctrl-C while the submit is under way lets it finish (so its task id is not
    lost) unless pressed twice; Ctrl-C while waiting leaves the task running
    and says how to follow it.

    Raises:
        Interrupted: the user stopped it.
        RunningHubError, OSError, ValueError: the job or the download failed.
    """
    async with open_session(target, ClientOptions(max_in_flight=1)) as session:
        client = session.client
        try:
            job = await unless_stopped(stop.forced, lambda: _submit(client, request))
        except Interrupted:
            raise Interrupted(
                "interrupted while submitting; RunningHub may have accepted the task: "
                "check your task list before trying again"
            ) from None
        print(f"task {job.task_id} submitted to {job.endpoint}", flush=True)
        resume = f"task {job.task_id} keeps running on RunningHub; follow it with: "
        resume += f"runninghub-async status {job.task_id}"
        if stop.requested.is_set():
            raise Interrupted(f"interrupted; {resume}")
        started = anyio.current_time()
        try:
            result: JobResult = await unless_stopped(stop.requested, job.wait)
            paths = await unless_stopped(
                stop.requested, lambda: client.download(result, request.output)
            )
        except Interrupted:
            raise Interrupted(f"interrupted; {resume}") from None
    elapsed = anyio.current_time() - started
    noun = "file" if len(paths) == 1 else "files"
    print(f"done in {elapsed:.1f} s; {len(paths)} {noun}:")
    for path in paths:
        print(path)
    return 0


def describe_snapshot(snapshot: TaskSnapshot) -> list[str]:
    """The lines ``status`` prints for *snapshot*."""
    lines = [f"task {snapshot.task_id}: {snapshot.status.value}"]
    if snapshot.error_code or snapshot.error_message:
        lines.append(f"  error {snapshot.error_code or '?'}: {snapshot.error_message}")
    reason = snapshot.failed_reason
    detail = reason.exception_message or reason.exception_type if reason is not None else None
    # The reason once: a failedReason that repeats the error message adds only its node.
    if reason is not None and detail and detail.strip() not in snapshot.error_message:
        where = f" in node {reason.node_name or reason.node_id}" if reason.node_id else ""
        lines.append(f"  failed{where}: {detail}")
    for n, output in enumerate(snapshot.outputs):
        shown = output.url or output.text or "(empty)"
        kind = f" ({output.output_type})" if output.output_type else ""
        lines.append(f"  output {n}: {shown}{kind}")
    usage = snapshot.usage
    if usage is not None:
        parts = []
        if usage.consume_money is not None:
            parts.append(f"cost {usage.consume_money}")
        if usage.consume_coins is not None:
            parts.append(f"{usage.consume_coins} coins")
        if usage.task_cost_time is not None:
            parts.append(f"ran {usage.task_cost_time:g} s")
        if parts:
            lines.append("  " + ", ".join(parts))
    return lines


async def run_status(target: Target, task_id: str, stop: Stop) -> int:
    """Print one task's state (one query, no waiting); 1 when it FAILED or was cancelled.

    Raises:
        TaskNotFoundError: RunningHub does not know the task.
        RunningHubError: the query failed.
    """
    async with open_session(target, ClientOptions(max_in_flight=1)) as session:
        client = session.client
        snapshot = await unless_stopped(stop.requested, lambda: client.query(task_id))
    for line in describe_snapshot(snapshot):
        print(line)
    return 1 if snapshot.status in (TaskStatus.FAILED, TaskStatus.CANCEL) else 0


async def run_account(target: Target, stop: Stop) -> int:
    """Print the account's balance and the key's concurrency.

    Raises:
        RunningHubError: RunningHub refused or did not answer.
    """
    async with open_session(target, ClientOptions(max_in_flight=1)) as session:
        client = session.client
        account = await unless_stopped(stop.requested, client.account)
        queue = await unless_stopped(stop.requested, client.queue_status)
    money = "?" if account.remain_money is None else str(account.remain_money)
    currency = f" {account.currency}" if account.currency else ""
    coins = "?" if account.remain_coins is None else str(account.remain_coins)
    key_type = account.api_type or queue.api_key_type
    if queue.api_key_type and queue.api_key_type != key_type:
        key_type += f" (queue status says {queue.api_key_type})"
    rows = [
        ("key type", key_type),
        ("balance", f"{money}{currency}, {coins} coins"),
        ("tasks now", f"{queue.running_count} running, {queue.queued_count} queued"),
        ("concurrency limit", str(queue.concurrent_limit)),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0
