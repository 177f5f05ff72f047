"""The public namespace is deliberate: sorted, complete, documented."""

from __future__ import annotations

import inspect

import runninghub_async
import runninghub_async.testing


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted and names exactly the public attributes."""
    names = runninghub_async.__all__
    assert names == sorted(names)
    public = {n for n in dir(runninghub_async) if not n.startswith("_")}
    # Submodules imported on demand (by other tests) become attributes, not exports.
    public -= {"annotations", "version", "PackageNotFoundError", "testing", "redis"}
    assert set(names) - {"__version__"} == public


def test_every_public_name_has_a_docstring() -> None:
    """Users can read what each public class or function does."""
    for module in (runninghub_async, runninghub_async.testing):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


def test_testing_is_not_imported_by_default() -> None:
    """The fake server is opt-in: the package itself does not import it."""
    source = inspect.getsource(runninghub_async)
    assert "testing import" not in source
