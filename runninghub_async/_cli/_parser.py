"""The argument parser of ``runninghub-async``, and the converters its options use.

Only the syntax of each command lives here: which options there are, their
defaults and help texts, and the converters that turn one option's text into a
value (failing as argparse's usage errors).  Checks that look at several options
together, or at the model catalog, are `_prepare`'s.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, TypeAlias

from .. import __version__, _catalog
from ._run import parse_input, parse_param

__all__ = ["build_parser", "parsers"]

# argparse's subparsers action is generic in typeshed only, so it cannot be
# subscripted at runtime.
if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``runninghub-async``."""
    return parsers()[0]


def parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser, and each command's own parser (whose ``error`` names the command)."""
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="runninghub-async",
        description=(
            "Generate images on RunningHub from the command line. Uses the real API when "
            "RUNNINGHUB_API_KEY is set; --fake uses an embedded fake server instead."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The order they are added in is the order --help and "invalid choice" list them.
    _add_demo(commands, common)
    _add_generate(commands, common)
    _add_batch(commands, common)
    _add_job_commands(commands, common)
    _add_lookups(commands, common)
    return parser, dict(commands.choices)


def _common_options() -> argparse.ArgumentParser:
    """The options every command that talks to RunningHub takes (a parent parser)."""
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
    return common


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


def _add_demo(commands: Subparsers, common: argparse.ArgumentParser) -> None:
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


def _add_generate(commands: Subparsers, common: argparse.ArgumentParser) -> None:
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


def _add_batch(commands: Subparsers, common: argparse.ArgumentParser) -> None:
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


def _add_job_commands(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    """``run`` (any catalogued model), ``app`` and ``workflow``."""
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


def _add_lookups(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    """``download``, ``price``, ``status``, ``account`` and ``models``."""
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
    commands.add_parser("account", parents=[common], help="balance and concurrency of the key")
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
