"""RunningHub's models: what each one is called, makes, accepts and costs.

The catalog holds every model of RunningHub's public model registry (facts
only: endpoint paths, documented names, output types, parameter schemas and
prices; Apache-2.0, RunningHub).  It is read on first use::

    from runninghub_async import catalog

    catalog.find("kling image-to-video")[0].endpoint
    spec = catalog.get("minimax/speech-2.8-hd")
    spec.endpoint          # "rhart-audio/text-to-audio/speech-2.8-hd"
    spec.output_type       # "audio"
    [p.name for p in spec.params if p.required]

The client validates every submit against the same catalog before sending it.
"""

from __future__ import annotations

from ._catalog import Catalog, default_catalog
from ._specs import EndpointSpec as ModelSpec
from ._specs import ParamSpec, Violation

__all__ = ["Catalog", "ModelSpec", "ParamSpec", "Violation", "find", "get", "models"]


def find(text: str = "") -> list[ModelSpec]:
    """Models whose path, names, output type or category contain every word of *text*.

    Best matches first: an exact path or name, then those starting with the
    first word, then the rest; shorter paths first within each.  An empty
    *text* lists every model.
    """
    return default_catalog().find(text)


def get(name_or_path: str) -> ModelSpec:
    """The model with this endpoint path or documented name.

    Raises:
        InvalidParametersError: no such model; ``field`` is ``"endpoint"`` and the
            message and ``allowed`` name the closest models.
    """
    return default_catalog().require(name_or_path)


def models() -> list[ModelSpec]:
    """Every model of the packaged catalog, sorted by endpoint path."""
    return sorted(default_catalog(), key=lambda spec: spec.path)
