"""Every RunningHub model: the catalog behind validation, by endpoint path or name.

The packaged data (``_data/catalog.json``, facts from RunningHub's public model
registry, Apache-2.0) is read on first use, never at import.  A `Catalog` can
also be built from a newer registry file (`Catalog.from_path`).  The same
catalog is checked by the client (before any money is spent) and by the fake
server (which answers errorCode 1007 like the real one).

The module-level functions use the packaged catalog.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ._checks import closest, violations
from ._errors import FileTooLargeError, InvalidParametersError
from ._registry import specs
from ._specs import EndpointSpec, ParamSpec, Violation

__all__ = [
    "DEFAULT_MODEL",
    "ENDPOINTS",
    "MODELS",
    "Catalog",
    "EndpointSpec",
    "ParamSpec",
    "Violation",
    "default_catalog",
    "invalid_parameters",
    "lookup",
    "require",
    "resolve_endpoint",
    "violations",
]


class Catalog:
    """A set of model specs, found by endpoint path or documented name.

    Build one with `from_path` (a RunningHub registry file or a compact catalog
    file) or `from_specs`; `default_catalog()` is the packaged one.
    """

    def __init__(self, models: Iterable[EndpointSpec]) -> None:
        self._specs: dict[str, EndpointSpec] = {}
        for spec in models:
            self._specs.setdefault(spec.path, spec)
        self._by_name: dict[str, str] = {}
        self._folded: dict[str, str] = {}
        for spec in self._specs.values():
            for name in spec.names:
                self._by_name.setdefault(name, spec.path)
            for key in (spec.path, *spec.names):
                self._folded.setdefault(key.casefold(), spec.path)

    @classmethod
    def from_specs(cls, models: Iterable[EndpointSpec]) -> Catalog:
        """A catalog of *models* (the first spec of a path wins)."""
        return cls(models)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Catalog:
        """A catalog of decoded JSON: a RunningHub registry or compact catalog data.

        Raises:
            ValueError: *data* is neither.
        """
        return cls(specs(data))

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Catalog:
        """A catalog read from a JSON file: a RunningHub registry or compact catalog.

        Raises:
            OSError: the file cannot be read.
            ValueError: it is not JSON, or not catalog data.
        """
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
        if not isinstance(data, dict):
            raise ValueError(f"{os.fspath(path)!r} is not catalog data")
        return cls.from_data(data)

    @property
    def endpoints(self) -> Mapping[str, EndpointSpec]:
        """Every spec, by endpoint path."""
        return self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def __iter__(self) -> Iterator[EndpointSpec]:
        return iter(self._specs.values())

    def __repr__(self) -> str:
        return f"<Catalog of {len(self._specs)} models>"

    def resolve_endpoint(self, endpoint: str) -> str:
        """The endpoint path for *endpoint*, given as a path or a documented name.

        A leading ``/openapi/v2/`` is dropped.  Documented names map to their
        path (exactly, else ignoring case); anything else is taken to be a path.

        Raises:
            ValueError: *endpoint* is empty or would leave the API's path space.
        """
        if not isinstance(endpoint, str):
            raise ValueError(f"not an endpoint path or name: {endpoint!r}")
        path = _normalise(endpoint)
        if path not in self._specs:
            path = self._by_name.get(path) or self._folded.get(path.casefold(), path)
        if not path or ".." in path.split("/") or "?" in path or "#" in path or "//" in path:
            raise ValueError(f"not an endpoint path or name: {endpoint!r}")
        return path

    def lookup(self, endpoint: str) -> EndpointSpec | None:
        """The spec of *endpoint* (a path or a documented name), or None."""
        try:
            return self._specs.get(self.resolve_endpoint(endpoint))
        except ValueError:
            return None

    def require(self, endpoint: str) -> EndpointSpec:
        """The spec of *endpoint*, which must be catalogued.

        Raises:
            InvalidParametersError: unknown model (``code`` ``"local"``, ``field``
                ``"endpoint"``); the message and ``allowed`` name the closest
                catalogued names and paths.
        """
        spec = self.lookup(endpoint)
        if spec is not None:
            return spec
        near = self.closest(endpoint if isinstance(endpoint, str) else repr(endpoint))
        hint = f"; did you mean: {', '.join(near)}?" if near else ""
        raise _unknown(endpoint, hint, ", ".join(near))

    def closest(self, text: str, n: int = 5) -> list[str]:
        """Up to *n* catalogued paths or names nearest to *text*, best first."""
        key = _normalise(text)
        candidates = [*self._specs, *self._by_name]
        return closest(key, candidates, n)

    def find(self, text: str = "") -> list[EndpointSpec]:
        """Specs whose path, names, output type or category match *text*, best first.

        Every word of *text* must appear (ignoring case) in one of them.  Exact
        matches come first, then shorter paths.  An empty text lists every model.
        """
        words = text.casefold().split()
        found: list[tuple[int, int, str, EndpointSpec]] = []
        for spec in self._specs.values():
            fields = [spec.path, *spec.names, spec.output_type, spec.category]
            haystack = " ".join(fields).casefold()
            if not all(word in haystack for word in words):
                continue
            exact = text.strip().casefold() in (f.casefold() for f in fields)
            starts = any(f.casefold().startswith(words[0]) for f in fields) if words else False
            rank = 0 if exact else 1 if starts else 2
            found.append((rank, len(spec.path), spec.path, spec))
        found.sort(key=lambda row: row[:3])
        return [row[3] for row in found]

    def violations(
        self,
        spec: EndpointSpec,
        body: Mapping[str, object],
        *,
        image_sizes: Mapping[str, int] | None = None,
    ) -> list[Violation]:
        """Every way *body* breaks *spec* (see `runninghub_async._checks.violations`)."""
        return violations(spec, body, image_sizes=image_sizes)


def _unknown(endpoint: object, hint: str, allowed: str) -> InvalidParametersError:
    return InvalidParametersError(
        "local",
        f"unknown model {endpoint!r}{hint}",
        endpoint=endpoint if isinstance(endpoint, str) else None,
        field="endpoint",
        value=endpoint,
        allowed=allowed or "a catalogued model path or name",
    )


def _normalise(endpoint: str) -> str:
    path = endpoint.strip()
    for prefix in ("/openapi/v2/", "openapi/v2/", "/"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    return path


@functools.cache
def default_catalog() -> Catalog:
    """The packaged catalog (read once, on first use)."""
    from importlib.resources import files

    text = (
        files(__package__ or "runninghub_async")
        .joinpath("_data", "catalog.json")
        .read_text(encoding="utf-8")
    )
    return Catalog.from_data(json.loads(text))


class _DefaultEndpoints(Mapping[str, EndpointSpec]):
    """`ENDPOINTS`: the packaged catalog's specs by path, loaded on first access."""

    def __getitem__(self, path: str) -> EndpointSpec:
        return default_catalog().endpoints[path]

    def __iter__(self) -> Iterator[str]:
        return iter(default_catalog().endpoints)

    def __len__(self) -> int:
        return len(default_catalog().endpoints)

    def __contains__(self, path: object) -> bool:
        return path in default_catalog().endpoints

    def __repr__(self) -> str:
        return "<ENDPOINTS of the packaged catalog>"


ENDPOINTS: Mapping[str, EndpointSpec] = _DefaultEndpoints()
"""Every catalogued endpoint of the packaged catalog, by path (below ``/openapi/v2/``)."""

MODELS: Mapping[str, tuple[str, str]] = {
    "nano-banana-pro": ("rhart-image-n-pro/text-to-image", "rhart-image-n-pro/edit"),
    "nano-banana-pro-official": (
        "rhart-image-n-pro-official/text-to-image",
        "rhart-image-n-pro-official/edit",
    ),
    "nano-banana-pro-ultra": (
        "rhart-image-n-pro-official/text-to-image-ultra",
        "rhart-image-n-pro-official/edit-ultra",
    ),
    "nano-banana2": (
        "rhart-image-n-g31-flash/text-to-image",
        "rhart-image-n-g31-flash/image-to-image",
    ),
    "nano-banana2-official": (
        "rhart-image-n-g31-flash-official/text-to-image",
        "rhart-image-n-g31-flash-official/image-to-image",
    ),
    "nano-banana": ("rhart-image-v1/text-to-image", "rhart-image-v1/edit"),
    "nano-banana-official": (
        "rhart-image-v1-official/text-to-image",
        "rhart-image-v1-official/edit",
    ),
    "nano-banana2-lite": (
        "rhart-image-n-g31-flash-lite/text-to-image",
        "rhart-image-n-g31-flash-lite/image-to-image",
    ),
    "nano-banana2-lite-official": (
        "rhart-image-n-g31-flash-lite-official/text-to-image",
        "rhart-image-n-g31-flash-lite-official/image-to-image",
    ),
}
"""The image helpers' model names: name -> (text-to-image path, edit path).

A bare name is the low-price channel; ``-official`` is the official-stable one.
Every path is in `ENDPOINTS`, so every helper call is validated.
"""

DEFAULT_MODEL = "nano-banana-pro"
"""The model the image helpers use when none is named."""


def resolve_endpoint(endpoint: str) -> str:
    """`Catalog.resolve_endpoint` of the packaged catalog."""
    return default_catalog().resolve_endpoint(endpoint)


def lookup(endpoint: str) -> EndpointSpec | None:
    """`Catalog.lookup` of the packaged catalog."""
    return default_catalog().lookup(endpoint)


def require(endpoint: str) -> EndpointSpec:
    """`Catalog.require` of the packaged catalog."""
    return default_catalog().require(endpoint)


def invalid_parameters(spec: EndpointSpec, problems: Sequence[Violation]) -> InvalidParametersError:
    """The error (not raised) for *problems*, naming the first one's field.

    It is a `FileTooLargeError` when the first problem is a file over the
    model's size limit.
    """
    first = problems[0]
    cls = FileTooLargeError if first.too_large else InvalidParametersError
    return cls(
        "local",
        "; ".join(str(p) for p in problems),
        endpoint=spec.path,
        field=first.field,
        value=first.value,
        allowed=first.allowed,
    )
