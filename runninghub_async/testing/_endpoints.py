"""Which submit paths the fake knows, and what a finished task costs.

The nano-banana endpoints come from ``runninghub_async._catalog`` (validated).
The other documented image endpoints (runninghub-api.md section 2.4), the lite
variants and the AI-app/workflow runs are known but not validated: any JSON
object is accepted there.  Anything else gets errorCode 1000, as observed for an
unknown v2 path.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._catalog import EndpointSpec, lookup

__all__ = ["catalogued", "is_known", "is_standard_model", "price_of"]

_OTHER_IMAGE_ENDPOINTS = frozenset(
    {
        "alibaba/qwen-image-2.0-pro/image-edit",
        "alibaba/qwen-image-2.0-pro/text-to-image",
        "alibaba/qwen-image-2.0/image-edit",
        "alibaba/qwen-image-2.0/text-to-image",
        "alibaba/wan-2.5-preview/image-to-image",
        "alibaba/wan-2.5-preview/text-to-image",
        "alibaba/wan-2.7/image-edit",
        "alibaba/wan-2.7/image-edit-pro",
        "alibaba/wan-2.7/text-to-image",
        "alibaba/wan-2.7/text-to-image-pro",
        "higgsfield/soul/image-to-image",
        "image-enhance/hypir-balance",
        "image-enhance/hypir-ultra",
        "marble-1.0/image-to-world",
        "marble-1.0/multi-image-to-world",
        "marble-1.1-plus/image-to-world",
        "marble-1.1-plus/multi-image-to-world",
        "marble-1.1/image-to-world",
        "marble-1.1/multi-image-to-world",
        "rhart-image-g-1.5-official/image-to-image",
        "rhart-image-g-1.5-official/text-to-image",
        "rhart-image-g-1.5/edit-[Deprecated]",
        "rhart-image-g-1.5/text-to-image-[Deprecated]",
        "rhart-image-g-2-official/image-to-image",
        "rhart-image-g-2-official/text-to-image",
        "rhart-image-g-2/image-to-image",
        "rhart-image-g-2/text-to-image",
        "rhart-image-g-3/image-to-image",
        "rhart-image-g-3/text-to-image",
        "rhart-image-g-4/image-to-image",
        "rhart-image-g-4/text-to-image",
        "rhart-image-g/image-to-image",
        "rhart-image-g/text-to-image",
        "rhart-image-x-official/edit",
        "rhart-image-x-official/text-to-image",
        "rhart-image/f-dev",
        "rhart-image/f-dev-lora",
        "seedream-v4.5/image-to-image",
        "seedream-v4.5/text-to-image",
        "seedream-v4/image-to-image",
        "seedream-v4/text-to-image",
        "seedream-v5-lite/image-to-image",
        "seedream-v5-lite/text-to-image",
        "topazlabs/image-upscale-cgi",
        "topazlabs/image-upscale-high-fidelity-v2",
        "topazlabs/image-upscale-standard-v2",
        "topazlabs/image-upscale-text-refine",
        "topazlabs/image-upscale/low-resolution-v2",
        "youchuan/text-to-image-niji6",
        "youchuan/text-to-image-niji7",
        "youchuan/text-to-image-v6",
        "youchuan/text-to-image-v61",
        "youchuan/text-to-image-v7",
        # The nano lite pages (section 2.2), in case the catalog lacks them.
        "rhart-image-n-g31-flash-lite/text-to-image",
        "rhart-image-n-g31-flash-lite/image-to-image",
        "rhart-image-n-g31-flash-lite-official/text-to-image",
        "rhart-image-n-g31-flash-lite-official/image-to-image",
    }
)

_RUN_PREFIXES = ("run/ai-app/", "run/workflow/")

# CNY per call by endpoint family and resolution (pricing.public.json, section 2.2).
_PRICES: Mapping[str, Mapping[str, str]] = {
    "rhart-image-n-pro": {"1k": "0.40", "2k": "0.40", "4k": "0.50"},
    "rhart-image-n-pro-official": {"1k": "0.80", "2k": "1.00", "4k": "1.50"},
    "rhart-image-n-pro-official/ultra": {"4k": "0.98", "8k": "1.12"},
    "rhart-image-n-g31-flash-official": {"1k": "0.49", "2k": "0.74", "4k": "0.99"},
    "rhart-image-n-g31-flash": {"1k": "0.16", "2k": "0.16", "4k": "0.20"},
    "rhart-image-v1-official": {"": "0.20"},
    "rhart-image-v1": {"": "0.05"},
}
_DEFAULT_PRICE = "0.10"


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
    return catalogued(path) is not None or path in _OTHER_IMAGE_ENDPOINTS or _is_run(path)


def is_standard_model(path: str) -> bool:
    """Whether *path* is a Standard Model API endpoint (not an AI-app or workflow run)."""
    return not path.startswith("run/")


def price_of(path: str, params: Mapping[str, object]) -> str:
    """The CNY price of one successful call, as the string ``usage.consumeMoney`` carries."""
    family, _, task = path.partition("/")
    if family == "rhart-image-n-pro-official" and task.endswith("-ultra"):
        family = "rhart-image-n-pro-official/ultra"
    table = _PRICES.get(family)
    if table is None:
        return _DEFAULT_PRICE
    if "" in table:
        return table[""]
    resolution = params.get("resolution")
    return table.get(resolution if isinstance(resolution, str) else "", min(table.values()))
