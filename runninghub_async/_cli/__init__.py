"""The ``runninghub-async`` command line (``python -m runninghub_async``).

Commands: ``demo`` (many images on the embedded fake, live progress, a summary),
``generate`` (one image), ``batch`` (a file of prompts, resumable), ``status``
and ``account``.  The live progress display uses ``rich`` from the ``cli``
extra when stdout is a terminal, and plain lines otherwise.
"""

from __future__ import annotations

from ._app import main as main

__all__ = ["main"]
