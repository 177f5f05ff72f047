"""The public namespace is deliberate: sorted, complete, documented, shown under its public name."""

from __future__ import annotations

import inspect
import subprocess
import sys

import runninghub_async
import runninghub_async.catalog
import runninghub_async.sync
import runninghub_async.testing
import runninghub_async.webhooks

SUBMODULES = {"testing", "catalog", "sync", "webhooks", "redis", "otel"}


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and names exactly the public attributes."""
    names = runninghub_async.__all__
    assert names == sorted(names)
    public = {n for n in dir(runninghub_async) if not n.startswith("_")}
    public -= {"annotations", "version", "PackageNotFoundError", *SUBMODULES}
    assert set(names) - {"__version__"} == public


def test_every_public_name_has_a_docstring() -> None:
    """Users can read what each public class or function does."""
    modules = (
        runninghub_async,
        runninghub_async.testing,
        runninghub_async.catalog,
        runninghub_async.sync,
        runninghub_async.webhooks,
    )
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


def test_exported_names_show_as_the_public_module() -> None:
    """Tracebacks and reprs say runninghub_async.X, not the private module it lives in."""
    for name in runninghub_async.__all__:
        obj = getattr(runninghub_async, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "runninghub_async", name
    assert repr(runninghub_async.TaskFailedError).startswith("<class 'runninghub_async.")


def test_importing_the_package_does_not_import_the_fake_or_aiohttp_web() -> None:
    """The fake server and aiohttp's server side are opt-in: the package imports neither."""
    code = (
        "import sys, runninghub_async; "
        "print('runninghub_async.testing' in sys.modules, 'aiohttp.web' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
