"""Write ``runninghub_async/_data/catalog.json`` from RunningHub's public registry.

Facts extracted from the RunningHub model registry ``public-2026-04-29``
(``model-registry.public.json`` and ``pricing.public.json``, Apache-2.0,
RunningHub): endpoint paths, documented names, output types, categories,
parameter names, types, required flags, enum values, ranges, steps, defaults,
media counts, sizes and formats, and prices.  No descriptions are copied.

The nano-banana2 "lite" endpoints are documented on RunningHub's pages but not in
that registry; they are merged in from the small table below.

Usage (from the repository root)::

    python tools/gen_catalog.py [--registry PATH] [--pricing PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runninghub_async._registry import compact  # noqa: E402

CREDIT = (
    "RunningHub model registry public-2026-04-29, Apache-2.0, "
    "facts extracted by tools/gen_catalog.py"
)

_FLASH_RATIOS = [
    "1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "5:4", "4:5", "21:9",
    "1:4", "4:1", "1:8", "8:1",
]  # fmt: skip
_PROMPT = {"k": "prompt", "t": "string", "r": 1, "ml": 20000}
_IMAGES = {"k": "imageUrls", "t": "image", "r": 1, "ls": 1}  # limits undocumented


def _ratio(default: str, values: list[str] = _FLASH_RATIOS) -> dict[str, Any]:
    return {"k": "aspectRatio", "t": "enum", "v": values, "d": default}


# The lite pages (runninghub-api.md section 2.2): no resolution param.
LITE: list[dict[str, Any]] = [
    {
        "e": "rhart-image-n-g31-flash-lite/image-to-image",
        "n": ["nano-banana2-lite/image-to-image-channel-low-price"],
        "p": [_PROMPT, _IMAGES, _ratio("9:16")],
    },
    {
        "e": "rhart-image-n-g31-flash-lite/text-to-image",
        "n": ["nano-banana2-lite/text-to-image-channel-low-price"],
        "p": [_PROMPT, _ratio("9:16")],
    },
    {
        "e": "rhart-image-n-g31-flash-lite-official/image-to-image",
        "n": ["nano-banana2-lite/image-to-image-official-stable"],
        "p": [_PROMPT, _IMAGES, _ratio("auto", ["auto", *_FLASH_RATIOS])],
    },
    {
        "e": "rhart-image-n-g31-flash-lite-official/text-to-image",
        "n": ["nano-banana2-lite/text-to-image-official-stable"],
        "p": [_PROMPT, _ratio("1:1")],
    },
]


def build(registry: Path, pricing: Path | None) -> dict[str, Any]:
    """The compact catalog data of *registry* and *pricing*, lite endpoints merged in."""
    reg = json.loads(registry.read_text(encoding="utf-8"))
    prices = json.loads(pricing.read_text(encoding="utf-8")) if pricing else None
    data = compact(reg, prices, source=CREDIT, license="Apache-2.0")
    known = {m["e"] for m in data["models"]}
    for model in LITE:
        if model["e"] not in known:
            data["models"].append({**model, "o": "image", "c": "RHArt Image"})
    data["models"].sort(key=lambda m: m["e"])
    return data


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = ROOT.parent / "shared" / "data"
    parser.add_argument("--registry", type=Path, default=shared / "model-registry.public.json")
    parser.add_argument("--pricing", type=Path, default=shared / "pricing.public.json")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "runninghub_async" / "_data" / "catalog.json"
    )
    args = parser.parse_args(argv)
    pricing = args.pricing if args.pricing.exists() else None
    data = build(args.registry, pricing)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    args.out.write_text(text + "\n", encoding="utf-8")
    params = sum(len(m.get("p", ())) for m in data["models"])
    sys.stdout.write(
        f"{args.out}: {len(data['models'])} models, {params} params, {len(text)} bytes\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
