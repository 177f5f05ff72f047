"""From parsed arguments to a command ready to run: checked, and bound to where calls go.

The parser (`_parser`) checks each option alone; this module checks what needs
several options, the model catalog or the filesystem, then picks the target
(`resolve_target`) and binds the command's function to its request.  A bad
argument found here is reported through the command's own parser, so it reads
and exits (2) like argparse's own usage errors.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal

from .. import _catalog
from .._images import is_image_url
from ._backend import ClientOptions, Target, resolve_target
from ._batch import BatchRequest, run_batch
from ._commands import GenerateRequest, image_inputs, run_account, run_generate, run_status
from ._demo import DemoRequest, run_demo
from ._inputs import RequestBuilder, endpoint_of
from ._models import run_models
from ._run import JobRequest, check_inputs, check_model, run_download, run_job, run_price
from ._stop import Stop

__all__ = ["Command", "prepare"]

Command = Callable[[Stop], Awaitable[int]]
"""A command bound to its request: awaited with the user's stop requests, it returns the exit
status."""


def _check_image_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, *, edit: bool
) -> None:
    path = endpoint_of(args.model, edit=edit)
    if path is None:
        near = _catalog.default_catalog().closest(str(args.model), 3)
        hint = f"; did you mean: {', '.join(near)}?" if near else ""
        parser.error(f"argument --model: unknown model {args.model!r}{hint}")
    spec = _catalog.lookup(path)
    if spec is None:  # pragma: no cover - every model's endpoints are catalogued
        return
    for option, name, value in (
        ("--aspect-ratio", "aspectRatio", args.aspect_ratio),
        ("--resolution", "resolution", args.resolution),
    ):
        if value is None:
            continue
        param = spec.param(name)
        if param is None:
            parser.error(f"argument {option}: {args.model} has no {option[2:]} setting; omit it")
        elif value not in param.choices:
            allowed = ", ".join(param.choices)
            parser.error(
                f"argument {option}: {value!r} is not allowed for {args.model}; allowed: {allowed}"
            )


def _target(
    parser: argparse.ArgumentParser, args: argparse.Namespace, env: Mapping[str, str]
) -> Target:
    demo = args.command == "demo"
    if demo and env.get("RUNNINGHUB_API_KEY", "").strip() and not (args.fake or args.real):
        parser.error(
            f"RUNNINGHUB_API_KEY is set, so the demo would make {args.count} real images on "
            "your account: pass --fake to use the embedded fake, or --real to spend the money"
        )
    return resolve_target(
        fake=args.fake,
        base_url=args.base_url,
        env=env,
        time_scale=args.time_scale,
        fake_without_key=demo,
    )


def _job_request(parser: argparse.ArgumentParser, args: argparse.Namespace) -> JobRequest | None:
    """The job of ``run``, ``price``, ``app`` or ``workflow``, checked; None for other commands."""
    try:
        if args.command in ("run", "price"):
            pairs = args.values if args.command == "run" else args.params
            images = args.image if args.command == "run" else []
            endpoint, body = check_model(args.model, pairs, images)
            return JobRequest(endpoint=endpoint, params=body, output=getattr(args, "output", None))
        if args.command in ("app", "workflow"):
            kind: Literal["ai-app", "workflow"] = "ai-app" if args.command == "app" else "workflow"
            endpoint = check_inputs(kind, args.run_id, args.values)
            return JobRequest(endpoint=endpoint, inputs=dict(args.values), output=args.output)
    except ValueError as exc:  # InvalidParametersError is one too
        parser.error(str(exc))
    return None


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The checks of ``generate`` and ``batch`` that need several options or the disk."""
    if args.command == "generate":
        _check_image_options(parser, args, edit=bool(args.image))
        for value in args.image:
            if not is_image_url(value) and not os.path.isfile(value):
                parser.error(
                    f"argument --image: no such file: {value!r} (give a local image file, "
                    "or an http(s):// or data: URL)"
                )
    elif args.command == "batch":
        _check_image_options(parser, args, edit=False)
        if args.redis and args.fake:
            parser.error(
                "argument --redis: not allowed with --fake (each worker's fake is its own)"
            )
        if not args.redis and args.worker:
            parser.error("argument --worker: needs --redis")


def _ready_output_dir(path: str) -> None:
    """Create the directory *path* if it is missing, and prove a file can be written in it.

    Blocking: called before the event loop starts.

    Raises:
        OSError: it cannot be created, is not a directory, or refuses a new file
            (read-only, no permission, a full disk); the message names *path*.
    """
    try:
        os.makedirs(path, exist_ok=True)
        # A real file, not os.access(), which misjudges ACLs and some network
        # filesystems.  Unnamed where the OS allows (O_TMPFILE), so nothing is
        # left behind even if the process dies here.
        with tempfile.TemporaryFile(dir=path, prefix=".runninghub-write-check-"):
            pass
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        if os.path.exists(path) and not os.path.isdir(path):
            reason = "it is not a directory"
        else:
            reason = getattr(exc, "strerror", None) or str(exc)
        raise OSError(f"cannot write files to {path!r}: {reason}") from None


def prepare(
    parsers: Mapping[str, argparse.ArgumentParser],
    args: argparse.Namespace,
    env: Mapping[str, str],
) -> Command:
    """The command *args* ask for, checked, ready to run; exits 2 on bad arguments.

    Args:
        parsers: each command's own parser, by name (its ``error`` names the command).
        args: what the top parser parsed.
        env: the environment (the key, the base URL).

    Raises:
        MissingKeyError: the command needs a key and there is none (after the
            arguments were found good).
        OSError: the output directory (``-o``) cannot be made or written to.
    """
    parser = parsers[args.command]
    if args.command == "models":
        return functools.partial(run_models, args.words)
    job = _job_request(parser, args)
    _check_options(parser, args)
    target = _target(parser, args, env)
    output = getattr(args, "output", None)
    if output is not None:
        # Here, not when the files come: a job is paid for when it is submitted,
        # and its files may come long after.
        _ready_output_dir(output)
    if args.command == "demo":
        demo = DemoRequest(count=args.count, output=args.output)
        return functools.partial(run_demo, target, demo)
    if args.command == "generate":
        generate = GenerateRequest(
            prompt=args.prompt,
            model=args.model,
            aspect_ratio=args.aspect_ratio,
            resolution=args.resolution,
            images=tuple(image_inputs(args.image)),
            output=args.output,
        )
        return functools.partial(run_generate, target, generate)
    if args.command == "batch":
        return _batch_command(target, args)
    if args.command == "status":
        return functools.partial(run_status, target, args.task_id)
    if args.command == "download":
        return functools.partial(run_download, target, args.task_id, args.output)
    if job is not None and args.command == "price":
        return functools.partial(run_price, target, job.endpoint, job.params)
    if job is not None:
        return functools.partial(run_job, target, job)
    return functools.partial(run_account, target)


def _batch_command(target: Target, args: argparse.Namespace) -> Command:
    batch = BatchRequest(
        file=args.file,
        output=args.output,
        builder=RequestBuilder(
            model=args.model, aspect_ratio=args.aspect_ratio, resolution=args.resolution
        ),
        options=ClientOptions(max_in_flight=args.max_in_flight, requests_per_second=args.rps),
        max_cost=args.max_cost,
        resubmit_unknown=args.resubmit_unknown,
        retry_failed=args.retry_failed,
    )
    if args.redis:
        from ._distributed import RedisOptions, run_distributed

        shared = RedisOptions(
            url=args.redis, worker=args.worker, claim_idle=args.claim_idle, lease=args.lease
        )
        return functools.partial(run_distributed, target, batch, shared)
    return functools.partial(run_batch, target, batch)
