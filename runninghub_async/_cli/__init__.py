"""The ``runninghub-async`` command line (``python -m runninghub_async``).

Commands: ``demo`` (many images on the embedded fake, live progress, a summary),
``generate`` (one image), ``batch`` (a file of prompts, resumable), ``status``
and ``account``.  The live progress display uses ``rich`` from the ``cli``
extra when stdout is a terminal, and plain lines otherwise.

This module imports nothing of the command line at the top (see `main`).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``runninghub-async`` with *argv* (default ``sys.argv[1:]``); the exit status.

    Without *argv* this is the program itself (the console script, ``python -m``):
    a Ctrl-C is then exit status 130 and one line, wherever it lands, from the
    loading of the command line's modules to the interpreter's exit.  With
    *argv* (a caller in Python: tests, scripts) a Ctrl-C the command does not
    handle is the caller's.
    """
    if argv is not None:
        from ._app import main as run

        return run(argv)
    try:
        try:
            # Imported here, not at the top, so that a Ctrl-C while the command
            # line's modules load is caught below instead of printing a traceback.
            from ._app import main as run

            status = run(None)
        finally:
            _settle()
    except KeyboardInterrupt:
        _settle()
        print("interrupted", file=sys.stderr)
        status = 130
    return status


def _settle() -> None:
    """The exit status is settled: keep a late Ctrl-C from changing it.

    From here a Ctrl-C would be a traceback in the caller's ``sys.exit(main())``,
    or, once the interpreter restores the default handlers at shutdown, a death
    by signal that hides the status; so SIGINT is ignored.

    And a Ctrl-C caught earlier may have ended a string ``exec`` (``namedtuple``
    and ``dataclasses`` build classes so while modules load).  CPython then
    flags the interrupt as unhandled, however it was handled, and under
    ``python -m`` kills the process with SIGINT at exit.  Every string ``exec``
    resets that flag first: the empty one below is for that.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    exec("", {})
