"""Run the fake RunningHub server standalone: ``python -m runninghub_async.testing``.

Prints its base URL on one line, then serves until SIGINT or SIGTERM and exits 0.
Durations are ``2.0`` (seconds), ``0.5,3`` (uniform range), ``lognormal:MEDIAN,SIGMA[,CAP]``
or ``none`` (tasks end only through the control API).  ``--help`` explains every option.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from ._durations import DurationSpec, lognormal
from ._server import FakeRunningHub


def _duration(text: str) -> DurationSpec:
    try:
        if text.lower() == "none":
            return None
        if text.startswith("lognormal:"):
            numbers = [float(v) for v in text.removeprefix("lognormal:").split(",")]
            if len(numbers) not in (2, 3):
                raise ValueError("need MEDIAN,SIGMA[,CAP]")
            return lognormal(*numbers)
        if "," in text:
            low, high = (float(v) for v in text.split(","))
            if not 0 <= low <= high:
                raise ValueError("need 0 <= MIN <= MAX")
            return (low, high)
        seconds = float(text)
        if seconds < 0:
            raise ValueError("must be >= 0")
        return seconds
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: {exc}") from exc


def _key_type(text: str) -> tuple[str, str]:
    key, sep, kind = text.partition("=")
    if not sep or not key or kind not in ("NORMAL", "SHARED", "EXCLUSIVE"):
        raise argparse.ArgumentTypeError(f"bad key type {text!r}: need KEY=NORMAL|SHARED|EXCLUSIVE")
    return key, kind


def _apps_file(text: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(text).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {exc}") from exc
    if not isinstance(data, dict) or not set(data) <= {"apps", "workflows"}:
        raise argparse.ArgumentTypeError(f'{text!r} must hold {{"apps": ..., "workflows": ...}}')
    return data


_EPILOG = """\
durations (--duration, --queue-time):
  2.0                       fixed seconds
  0.5,3                     uniform between 0.5 and 3 seconds
  lognormal:MEDIAN,SIGMA[,CAP]
                            log-normal with that median, shape and optional cap
  none                      never ends by itself (end tasks with the control API)

apps file (--apps-file), JSON:
  {"apps": {"<webappId>": [{"nodeId": "12", "fieldName": "image",
                             "fieldValue": "...", "description": "..."}]},
   "workflows": {"<workflowId>": {"<nodeId>": {"class_type": "...", "inputs": {...}}}}}
  Added to the built-in apps and workflows (see runninghub_async.testing).

routes: every route of the RunningHub API document, v2 (Bearer key) and legacy
(apiKey in the body): standard-model submit, query, upload, queue/status,
api-key/list, price-preview, resource/list, run/ai-app, run/workflow,
task/openapi/{create,ai-app/run,quick-ai-app/run,status,outputs,cancel,upload,
getWebhookDetail,retryWebhook}, accountStatus, getJsonApiFormat, apiCallDemo,
getLoraUploadUrl.

control API (no auth): GET /_fake/stats, GET /_fake/tasks,
POST /_fake/tasks/<id>/finish, POST /_fake/tasks/<id>/fail,
POST /_fake/faults (a Fault as JSON), DELETE /_fake/faults.
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runninghub_async.testing",
        description=(
            "Serve a fake RunningHub API on HTTP for tests, demos and benchmarks. "
            "Prints its base URL on one line, then serves until SIGINT/SIGTERM."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add(
        "--port",
        type=int,
        default=8787,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    add(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="an accepted API key; repeat for several (default: test-key)",
    )
    add(
        "--key-type",
        action="append",
        dest="key_types",
        type=_key_type,
        metavar="KEY=TYPE",
        help="apiType of a key: NORMAL, SHARED or EXCLUSIVE; only SHARED keys may call "
        "standard models (others get 1014). Repeatable (default: SHARED)",
    )
    add(
        "--duration",
        type=_duration,
        default=(0.2, 1.0),
        metavar="SPEC",
        help="how long a task stays RUNNING (see durations below; default: 0.2,1)",
    )
    add(
        "--queue-time",
        type=_duration,
        default=0.0,
        metavar="SPEC",
        help="how long a task stays QUEUED first (default: 0)",
    )
    add(
        "--concurrency-limit",
        type=int,
        default=None,
        metavar="N",
        help="unfinished tasks per key before a submit or run gets 421 (default: no limit)",
    )
    add(
        "--rate-limit",
        type=float,
        default=None,
        metavar="PER_SECOND",
        help="requests per second per key on /openapi/v2 before errorCode 1003 (default: no limit)",
    )
    add(
        "--failure-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="chance, 0 to 1, that a task which runs to its end fails (default: 0)",
    )
    add("--seed", type=int, default=None, help="seed for ids, durations, failures and faults")
    add(
        "--upload-max-bytes",
        type=int,
        default=30 * 1024 * 1024,
        metavar="BYTES",
        help="largest upload accepted; bigger gets 809 (default: 30 MiB)",
    )
    add(
        "--webhook-attempts",
        type=int,
        default=3,
        metavar="N",
        help="POSTs per TASK_END webhook before giving up (default: %(default)s)",
    )
    add(
        "--currency",
        default="CNY",
        help="accountStatus and price-preview currency; USD mimics runninghub.ai "
        "(default: %(default)s)",
    )
    add(
        "--apps-file",
        type=_apps_file,
        default=None,
        metavar="JSON",
        help="extra AI apps and workflows to know (format below)",
    )
    return parser


def _section(data: Mapping[str, Any] | None, name: str) -> Any:
    return None if data is None else data.get(name)


async def _serve(fake: FakeRunningHub) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with fake:
            print(fake.base_url, flush=True)
            async for _ in signals:
                break


def main(argv: Sequence[str] | None = None) -> int:
    """Parse *argv*, serve until SIGINT/SIGTERM, return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        fake = FakeRunningHub(
            api_keys=args.api_keys or ("test-key",),
            duration=args.duration,
            queue_time=args.queue_time,
            concurrency_limit=args.concurrency_limit,
            rate_limit=args.rate_limit,
            failure_rate=args.failure_rate,
            seed=args.seed,
            key_types=dict(args.key_types or ()),
            upload_max_bytes=args.upload_max_bytes,
            webhook_attempts=args.webhook_attempts,
            currency=args.currency,
            apps=_section(args.apps_file, "apps"),
            workflows=_section(args.apps_file, "workflows"),
            host=args.host,
            port=args.port,
        )
    except ValueError as exc:  # a knob out of range, e.g. --failure-rate 2
        parser.error(str(exc))
    anyio.run(_serve, fake)
    return 0


if __name__ == "__main__":
    sys.exit(main())
