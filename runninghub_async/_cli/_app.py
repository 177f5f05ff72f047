"""``runninghub-async``: running the command the arguments ask for, and the one place errors print.

Parsing is `_parser`'s and checking the arguments `_prepare`'s; this module runs
the prepared command under the signal watcher and turns what escapes it into an
exit status.

Exit statuses: 0 success; 1 an error, or a batch with failed items; 2 bad
arguments (argparse's convention); 130 Ctrl-C (143 SIGTERM).  Errors print one
line, ``error: <message>``, on stderr, never a traceback and never the API key.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

import anyio

from .. import AuthenticationError, InvalidParametersError, RunningHubError
from ._backend import MissingKeyError
from ._parser import build_parser as build_parser
from ._parser import parsers
from ._prepare import Command, prepare
from ._stop import Interrupted, Stop, can_watch_signals, watch_signals

__all__ = ["build_parser", "main"]


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


def _error_line(exc: BaseException, key: str) -> str:
    """The one line printed for *exc*, with *key* (the API key, if any) blanked out.

    The library blanks the key in answers, spelled as it was sent (or JSON-escaped);
    a server that echoes it in another case (a hex key upper-cased) is caught here.
    """
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, AuthenticationError):
        text = f"RunningHub refused the API key (check RUNNINGHUB_API_KEY): {text}"
    if key:
        text = re.sub(re.escape(key), "***", text, flags=re.IGNORECASE)
    return "error: " + " ".join(text.split())


def _status_of(exc: BaseException, command: str | None) -> int:
    """2 for a request found bad before it was sent (like argparse's bad arguments), else 1.

    ``models show NAME`` is a lookup, not a request: an unknown name there is 1.
    """
    local = isinstance(exc, InvalidParametersError) and exc.code == "local"
    return 2 if local and command != "models" else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``runninghub-async`` with *argv* (default ``sys.argv[1:]``); the exit status."""
    name: str | None = None
    try:
        parser, subparsers = parsers()
        args = parser.parse_args(argv)
        name = args.command
        command = prepare(subparsers, args, os.environ)
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
        key = os.environ.get("RUNNINGHUB_API_KEY", "").strip()
        print(_error_line(leaf, key), file=sys.stderr)
        return _status_of(leaf, name)
