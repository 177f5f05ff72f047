"""``runninghub-async models``: list and describe the catalogued models (no key, no network).

``models [TEXT...]`` lists the models whose path, names, output type or category
contain every word, best first; ``models show NAME`` describes one model's params.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from .. import catalog
from .._checks import describe
from .._specs import EndpointSpec
from ._stop import Stop

__all__ = ["format_model", "format_models", "run_models"]


def format_models(specs: Sequence[EndpointSpec]) -> str:
    """One line per model: endpoint, output type, name and price."""
    if not specs:
        return "no models match"
    width = max(len(s.path) for s in specs)
    lines = [
        f"{s.path:<{width}}  {s.output_type:<5}  {s.name if s.name != s.path else ''}".rstrip()
        + (f"  [{_price(s)}]" if _price(s) else "")
        for s in specs
    ]
    lines.append(f"{len(specs)} model{'s' if len(specs) != 1 else ''}")
    return "\n".join(lines)


def format_model(spec: EndpointSpec) -> str:
    """What *spec* is called, makes, costs and accepts, one param per line."""
    lines = [spec.path]
    if spec.names:
        lines.append("  names:    " + ", ".join(spec.names))
    lines.append(f"  output:   {spec.output_type}")
    if spec.category:
        lines.append(f"  category: {spec.category}")
    price = _price(spec)
    if price:
        lines.append(f"  price:    {price}")
    if not spec.params:
        lines.append("  params:   not documented (any body is sent as is)")
        return "\n".join(lines)
    lines.append("  params (* required):")
    width = max(len(p.name) for p in spec.params)
    for param in spec.params:
        mark = "*" if param.required else " "
        shown = json.dumps(param.default, ensure_ascii=False)
        default = "" if param.default is None else f" (default {shown})"
        lines.append(
            f"   {mark} {param.name:<{width}}  {param.type:<6}  {describe(param)}{default}"
        )
    return "\n".join(lines)


def _price(spec: EndpointSpec) -> str:
    if spec.price_unit is None:
        return ""
    if spec.price is not None:
        return f"{spec.price:g} CNY per {spec.price_unit}"
    if spec.price_rules is None:
        return ""
    names, rules = spec.price_rules
    costs = [cost for _, cost in rules]
    if not costs:
        return ""
    low, high = min(costs), max(costs)
    span = f"{low:g}" if low == high else f"{low:g}-{high:g}"
    by = f" by {', '.join(names)}" if names else ""
    return f"{span} CNY per {spec.price_unit}{by}"


async def run_models(words: Sequence[str], stop: Stop, out: TextIO | None = None) -> int:
    """Print the matching models, or with ``show NAME`` one model; the exit status.

    Raises:
        InvalidParametersError: ``show`` of an unknown model (names the closest).
    """
    del stop  # nothing to interrupt: no I/O beyond reading the packaged catalog
    stream = out if out is not None else sys.stdout
    if len(words) == 2 and words[0] == "show":
        stream.write(format_model(catalog.get(words[1])) + "\n")
        return 0
    found = catalog.find(" ".join(words))
    stream.write(format_models(found) + "\n")
    return 0 if found else 1
