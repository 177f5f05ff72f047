"""Which submit paths the fake knows, and what a finished task costs.

Every model of the library's catalog (RunningHub's registry, see
``runninghub_async._catalog``) is known and validated.  AI-app and workflow runs
are known but not validated: any JSON object is accepted there.  Anything else
gets errorCode 1000, as observed for an unknown v2 path.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._catalog import EndpointSpec, lookup

__all__ = ["catalogued", "is_known", "is_standard_model", "price_of"]

_RUN_PREFIXES = ("run/ai-app/", "run/workflow/")
_DEFAULT_PRICE = 0.10
# What one unit of a per-time price is, in seconds.
_SECONDS = {"second": 1.0, "second (minimum)": 1.0, "5 seconds": 5.0}
_DEFAULT_SECONDS = 5.0


def catalogued(path: str) -> EndpointSpec | None:
    """The catalog spec for exactly this path (a documented *name* is not a path)."""
    spec = lookup(path)
    return spec if spec is not None and spec.path == path else None


def _is_run(path: str) -> bool:
    for prefix in _RUN_PREFIXES:
        if path.startswith(prefix):
            rest = path[len(prefix) :]
            return bool(rest) and "/" not in rest
    return False


def is_known(path: str) -> bool:
    """Whether *path* (below ``/openapi/v2/``) is an endpoint the fake accepts submits on."""
    return catalogued(path) is not None or _is_run(path)


def is_standard_model(path: str) -> bool:
    """Whether *path* is a Standard Model API endpoint (not an AI-app or workflow run)."""
    return not path.startswith("run/")


def price_of(path: str, params: Mapping[str, object], outputs: int = 1) -> str:
    """The CNY price of one successful call, as the string ``usage.consumeMoney`` carries.

    The catalog's price for the params; a per-image price times *outputs*; a
    per-second price times the ``duration`` param (5 s when absent); ``"0.10"``
    where the catalog has no price.
    """
    spec = catalogued(path)
    price = spec.price_for(params) if spec is not None else None
    if spec is None or price is None:
        return f"{_DEFAULT_PRICE:.2f}"
    unit = _SECONDS.get(spec.price_unit or "")
    if unit is not None:
        price *= _seconds(params.get("duration"), spec) / unit
    elif spec.price_unit == "image":
        price *= max(outputs, 1)
    return f"{price:.2f}"


def _seconds(value: object, spec: EndpointSpec) -> float:
    if value is None:
        param = spec.param("duration")
        value = param.default if param is not None else None
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _DEFAULT_SECONDS
    return seconds if seconds > 0 else _DEFAULT_SECONDS
