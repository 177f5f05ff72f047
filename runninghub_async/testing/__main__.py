"""Run the fake RunningHub server standalone: ``python -m runninghub_async.testing``.

Prints its base URL on one line, then serves until SIGINT or SIGTERM and exits 0.
Durations are ``2.0`` (seconds), ``0.5,3`` (uniform range), ``lognormal:MEDIAN,SIGMA[,CAP]``
or ``none`` (tasks end only through the control API).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runninghub_async.testing",
        description="Serve a fake RunningHub API (see runninghub_async.testing).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument("--api-key", action="append", dest="api_keys", metavar="KEY")
    parser.add_argument("--duration", type=_duration, default=(0.2, 1.0))
    parser.add_argument("--queue-time", type=_duration, default=0.0)
    parser.add_argument("--concurrency-limit", type=int, default=None)
    parser.add_argument("--rate-limit", type=float, default=None)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    return parser


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
            host=args.host,
            port=args.port,
        )
    except ValueError as exc:  # a knob out of range, e.g. --failure-rate 2
        parser.error(str(exc))
    anyio.run(_serve, fake)
    return 0


if __name__ == "__main__":
    sys.exit(main())
