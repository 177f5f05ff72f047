"""``runninghub-async``: argument parsing, choosing where calls go, and the one place errors print.

Exit statuses: 0 success; 1 an error, or a batch with failed items; 2 bad
arguments (argparse's convention); 130 Ctrl-C (143 SIGTERM).  Errors print one
line, ``error: <message>``, on stderr, never a traceback and never the API key.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Literal

import anyio

from .. import AuthenticationError, InvalidParametersError, RunningHubError, __version__, _catalog
from .._images import is_image_url
from ._backend import ClientOptions, MissingKeyError, Target, resolve_target
from ._batch import BatchRequest, run_batch
from ._commands import GenerateRequest, image_inputs, run_account, run_generate, run_status
from ._demo import DemoRequest, run_demo
from ._inputs import RequestBuilder, endpoint_of
from ._models import run_models
from ._run import (
    JobRequest,
    check_inputs,
    check_model,
    parse_input,
    parse_param,
    run_download,
    run_job,
    run_price,
)
from ._stop import Interrupted, Stop, can_watch_signals, watch_signals

__all__ = ["build_parser", "main"]

Command = Callable[[Stop], Awaitable[int]]

_DEMO_OUTPUT = os.path.join("runninghub-out", "demo")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _in_flight(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f'expected a whole number >= 1 or "auto", got {text!r}'
        ) from None


def _cost(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected an amount >= 0, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected an amount >= 0, got {text!r}")
    return value


def _param(text: str) -> tuple[str, object]:
    return parse_param(text)


def _input(text: str) -> tuple[str, object]:
    return parse_input(text)


def _task_id(text: str) -> str:
    value = text.strip()
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"a task id is all digits, got {text!r}")
    return value


def _add_image_options(parser: argparse.ArgumentParser, *, any_model: bool = False) -> None:
    models = list(_catalog.MODELS)
    if any_model:
        parser.add_argument(
            "--model",
            default=_catalog.DEFAULT_MODEL,
            metavar="M",
            help=(
                f"any model ('runninghub-async models'), or one of {', '.join(models)}, "
                "which edit when a line has imageUrls (default: %(default)s)"
            ),
        )
    else:
        parser.add_argument(
            "--model",
            choices=models,
            default=_catalog.DEFAULT_MODEL,
            metavar="M",
            help=f"one of: {', '.join(models)} (default: %(default)s)",
        )
    parser.add_argument("--aspect-ratio", metavar="R", help="e.g. 16:9 (default: the model's own)")
    parser.add_argument(
        "--resolution", metavar="S", help="1k, 2k or 4k; ultra: 4k or 8k (default: the model's)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``runninghub-async``."""
    return _parsers()[0]


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser, and each command's own parser (whose ``error`` names the command)."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("where calls go")
    exclusive = where.add_mutually_exclusive_group()
    exclusive.add_argument(
        "--fake",
        action="store_true",
        help="use the embedded fake RunningHub (no key needed, nothing is spent)",
    )
    exclusive.add_argument(
        "--base-url",
        metavar="URL",
        help="the API's base URL (default: $RUNNINGHUB_BASE_URL, else https://www.runninghub.ai)",
    )
    # Multiplies the fake world's durations and the client's poll cadence; tests run fast.
    common.add_argument("--time-scale", type=_positive_float, default=1.0, help=argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="runninghub-async",
        description=(
            "Generate images on RunningHub from the command line. Uses the real API when "
            "RUNNINGHUB_API_KEY is set; --fake uses an embedded fake server instead."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="many images on the embedded fake, with live progress and a summary",
        description=(
            "Generate N images on the embedded fake RunningHub (used when RUNNINGHUB_API_KEY "
            "is not set, or with --fake), download them, and summarise the run."
        ),
    )
    demo.add_argument(
        "-n",
        "--count",
        type=_positive_int,
        default=200,
        metavar="N",
        help="images to generate (default: %(default)s)",
    )
    demo.add_argument(
        "-o",
        "--output",
        default=_DEMO_OUTPUT,
        metavar="DIR",
        help="where the images go (default: %(default)s)",
    )
    demo.add_argument(
        "--real", action="store_true", help="run it on your RunningHub account (spends money)"
    )

    generate = commands.add_parser(
        "generate",
        parents=[common],
        help="one image: prints the task id at once, then downloads the result",
        description="Submit one text-to-image job (or an edit, with --image) and download it.",
    )
    generate.add_argument("prompt", metavar="PROMPT")
    _add_image_options(generate)
    generate.add_argument(
        "--image",
        action="extend",
        nargs="+",
        default=[],
        metavar="PATH_OR_URL",
        help="input image(s) to edit: local files (uploaded first) or http(s)/data: URLs",
    )
    generate.add_argument("-o", "--output", required=True, metavar="DIR", help="where the files go")

    batch = commands.add_parser(
        "batch",
        parents=[common],
        help="a file of prompts (or JSONL params); resumable after a crash or Ctrl-C",
        description=(
            "Run one job per line of FILE: a prompt per line, or a JSON object of params per "
            'line (an optional "model" key picks the model; "imageUrls" makes it an edit). '
            "Each task id is journaled in DIR before anything waits on it, so re-running the "
            "same command resumes: submitted tasks are re-attached, finished items skipped."
        ),
    )
    batch.add_argument("file", metavar="FILE")
    batch.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="where the files, the journal and failures.jsonl go",
    )
    _add_image_options(batch, any_model=True)
    batch.add_argument(
        "--max-cost",
        type=_cost,
        default=None,
        metavar="AMOUNT",
        help=(
            "stop submitting before the batch's estimated cost would pass AMOUNT "
            "(in the account's currency; each item is priced first)"
        ),
    )
    batch.add_argument(
        "--max-in-flight",
        type=_in_flight,
        default="auto",
        metavar="N",
        help='jobs in flight at once, or "auto": the key\'s limit (default)',
    )
    batch.add_argument(
        "--rps",
        type=_positive_float,
        default=None,
        metavar="R",
        help="requests per second at most (default: 10)",
    )
    batch.add_argument(
        "--resubmit-unknown",
        action="store_true",
        help="send again items whose earlier submit may have been accepted (may pay twice)",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="submit again items whose task failed on RunningHub in an earlier run",
    )
    shared = batch.add_argument_group(
        "several machines",
        "Start the same command with the same FILE on each machine: they share one batch, "
        "the key's limits and the journal through Redis (needs the redis extra).",
    )
    shared.add_argument(
        "--redis", metavar="URL", help="share the batch through this Redis (redis://host:6379/0)"
    )
    shared.add_argument(
        "--worker", metavar="NAME", help="this worker's name, unique (default: host:pid)"
    )
    shared.add_argument(
        "--claim-idle",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help=(
            "take over a silent worker's lines after S seconds (default: %(default)g; keep "
            "it under the 15 s slot lease, so its tasks are re-attached before its slots free)"
        ),
    )
    # Seconds a dead worker's slots stay held (the limiter's lease); tests shorten it.
    shared.add_argument("--lease", type=_positive_float, default=15.0, help=argparse.SUPPRESS)

    run = commands.add_parser(
        "run",
        parents=[common],
        help="one job of any model: --param NAME=VALUE ...",
        description=(
            "Run one job of any catalogued model and wait for it. --param values are JSON "
            "when they parse as JSON (n=2, flag=true), else strings (prompt=a red fox). "
            "Checked against the model's schema before anything is sent."
        ),
    )
    run.add_argument("model", metavar="MODEL", help="a model path or name")
    _add_job_options(run, "--param", _param, "NAME=VALUE", "a body parameter")
    run.add_argument(
        "--image",
        action="extend",
        nargs="+",
        default=[],
        metavar="PATH_OR_URL",
        help="input image(s) for the model's image parameter (local files are uploaded)",
    )
    for kind, what in (("app", "an AI app"), ("workflow", "a ComfyUI workflow")):
        runner = commands.add_parser(
            kind,
            parents=[common],
            help=f"run {what}: --input NODE.FIELD=VALUE ...",
            description=(
                f"Run {what} by id and wait for it. VALUE is a string; @PATH names a local "
                "file to upload (its upload's fileName is sent); @@ starts a literal @."
            ),
        )
        runner.add_argument("run_id", metavar="ID")
        _add_job_options(runner, "--input", _input, "NODE.FIELD=VALUE", "a node input")
    download = commands.add_parser(
        "download", parents=[common], help="wait for a task by id and download its files"
    )
    download.add_argument("task_id", type=_task_id, metavar="TASK_ID")
    download.add_argument("-o", "--output", required=True, metavar="DIR", help="where files go")
    price = commands.add_parser(
        "price", parents=[common], help="what one job of a model would cost (nothing is spent)"
    )
    price.add_argument("model", metavar="MODEL", help="a model path or name")
    price.add_argument(
        "--param", dest="params", action="append", type=_param, default=[], metavar="NAME=VALUE"
    )
    status = commands.add_parser("status", parents=[common], help="one task's state")
    status.add_argument("task_id", type=_task_id, metavar="TASK_ID")
    account = commands.add_parser(
        "account", parents=[common], help="balance and concurrency of the key"
    )
    models = commands.add_parser(
        "models",
        help="list RunningHub's models (no key needed); 'models show NAME' describes one",
        description=(
            "List the models whose endpoint, names, output type (image, video, audio, text, "
            "3d) or category contain every word of TEXT, best first. 'models show NAME' "
            "prints one model's params: types, allowed values, ranges and defaults."
        ),
    )
    models.add_argument("words", nargs="*", metavar="TEXT")
    subparsers = {
        "run": run,
        "app": commands.choices["app"],
        "workflow": commands.choices["workflow"],
        "download": download,
        "price": price,
        "models": models,
        "demo": demo,
        "generate": generate,
        "batch": batch,
        "status": status,
        "account": account,
    }
    return parser, subparsers


def _add_job_options(
    parser: argparse.ArgumentParser,
    flag: str,
    kind: Callable[[str], tuple[str, object]],
    metavar: str,
    what: str,
) -> None:
    parser.add_argument(
        flag,
        dest="values",
        action="append",
        type=kind,
        default=[],
        metavar=metavar,
        help=f"{what} (repeat it)",
    )
    parser.add_argument(
        "-o", "--output", metavar="DIR", help="download the files here (default: print the URLs)"
    )


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


def _prepare(
    parsers: Mapping[str, argparse.ArgumentParser],
    args: argparse.Namespace,
    env: Mapping[str, str],
) -> Command:
    """The command *args* ask for, checked, ready to run; exits 2 on bad arguments.

    Raises:
        MissingKeyError: the command needs a key and there is none (after the
            arguments were found good).
    """
    parser = parsers[args.command]
    if args.command == "models":
        return functools.partial(run_models, args.words)
    job: JobRequest | None = None
    try:
        if args.command in ("run", "price"):
            pairs = args.values if args.command == "run" else args.params
            images = args.image if args.command == "run" else []
            endpoint, body = check_model(args.model, pairs, images)
            job = JobRequest(endpoint=endpoint, params=body, output=getattr(args, "output", None))
        elif args.command in ("app", "workflow"):
            kind: Literal["ai-app", "workflow"] = "ai-app" if args.command == "app" else "workflow"
            endpoint = check_inputs(kind, args.run_id, args.values)
            job = JobRequest(endpoint=endpoint, inputs=dict(args.values), output=args.output)
    except ValueError as exc:  # InvalidParametersError is one too
        parser.error(str(exc))
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
    target = _target(parser, args, env)
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
    if args.command == "status":
        return functools.partial(run_status, target, args.task_id)
    if args.command == "download":
        return functools.partial(run_download, target, args.task_id, args.output)
    if job is not None and args.command == "price":
        return functools.partial(run_price, target, job.endpoint, job.params)
    if job is not None:
        return functools.partial(run_job, target, job)
    return functools.partial(run_account, target)


async def _run(command: Command) -> int:
    stop = Stop()
    if not can_watch_signals():
        return await command(stop)
    outcome: list[int] = []
    error: list[Exception] = []
    async with anyio.create_task_group() as tg:
        await tg.start(watch_signals, stop)
        try:
            outcome.append(await command(stop))
        except Exception as exc:  # kept out of the task group: it surfaces bare
            error.append(exc)
        tg.cancel_scope.cancel()
    if error:
        raise error[0]
    return outcome[0]


def _reportable(exc: BaseException) -> BaseException | None:
    """The error to print for *exc*, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [_reportable(e) for e in exc.exceptions]
        known = [leaf for leaf in leaves if leaf is not None]
        return known[0] if known and len(known) == len(leaves) else None
    if isinstance(
        exc, Interrupted | RunningHubError | OSError | ValueError | LookupError | MissingKeyError
    ):
        return exc
    return None


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, AuthenticationError):
        text = f"RunningHub refused the API key (check RUNNINGHUB_API_KEY): {text}"
    return "error: " + " ".join(text.split())


def _status_of(exc: BaseException, command: str | None) -> int:
    """2 for a request found bad before it was sent (like argparse's bad arguments), else 1.

    ``models show NAME`` is a lookup, not a request: an unknown name there is 1.
    """
    local = isinstance(exc, InvalidParametersError) and exc.code == "local"
    return 2 if local and command != "models" else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``runninghub-async`` with *argv* (default ``sys.argv[1:]``); the exit status."""
    parser, subparsers = _parsers()
    name: str | None = None
    try:
        args = parser.parse_args(argv)
        name = args.command
        command = _prepare(subparsers, args, os.environ)
        return anyio.run(_run, command)
    except SystemExit as exc:  # argparse: --help, --version, bad arguments
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except Interrupted as exc:
        print(str(exc), file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        leaf = _reportable(exc)
        if leaf is None:
            raise
        if isinstance(leaf, Interrupted):
            print(str(leaf), file=sys.stderr)
            return leaf.status
        print(_error_line(leaf), file=sys.stderr)
        return _status_of(leaf, name)
