"""The v2 account and catalogue routes: api-key list, price preview, resource list.

All take ``Authorization: Bearer <key>`` and share the per-key rate limit.

* ``GET /openapi/v2/api-key/list`` -> ``{"code": 0, "msg": "success", "data": [{key
  (masked), apiKeyName, status, quotaLimit, quotaUsed, visible, expireAt,
  expireInMinute, createdAt}]}``, one item per key the fake accepts.
* ``POST /openapi/v2/price-preview/<endpoint>`` with the submit body -> the bare
  object ``{errorCode, errorMessage, estimatedPrice, currency, priceText,
  priceTextEn, freeLimit, freeLimitCount, remainingFreeLimitCount, isFreeThisCall}``.
* ``POST /openapi/v2/resource/list`` ``{resourceType, resourceName?, baseModels?,
  tags?, current, size}`` -> ``data {records, size, current, total, pages,
  hasNext, hasPrevious}``: a few public models plus the caller's uploaded LoRAs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._bodies import envelope, join_problems, message_for
from ._context import AUTH_FAILED, RouteContext, json_response, mask_key
from ._endpoints import catalogued, is_known, price_of
from ._lora import Loras

__all__ = ["Misc", "preview_price"]

_MAX_PAGE = 50

# (id, resourceType, resourceName, baseModel, tag ids): a small public catalogue.
_PUBLIC_MODELS: tuple[tuple[str, str, str, str, tuple[int, ...]], ...] = (
    ("1001", "CHECKPOINT", "v1-5-pruned-emaonly.safetensors", "SD 1.5", (1,)),
    ("1002", "CHECKPOINT", "sd_xl_base_1.0.safetensors", "SDXL 1.0", (1,)),
    ("1003", "UNET", "flux1-dev.safetensors", "FLUX.1", (2,)),
    ("1004", "UNET", "qwen_image_fp8_e4m3fn.safetensors", "Qwen-Image", (2,)),
    ("1005", "UNET", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors", "Wan 2.2", (3,)),
    ("1006", "LORA", "flux_realism_lora.safetensors", "FLUX.1", (2, 4)),
    ("1007", "GGUF", "flux1-dev-Q4_K_S.gguf", "FLUX.1", (2,)),
)
_TAGS = {1: "image", 2: "flux-family", 3: "video", 4: "realism"}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def preview_price(path: str, params: Mapping[str, object]) -> float:
    """The price one call of *path* with *params* costs, in the fake's currency.

    The catalog's own ``price`` wins where the spec has one (a number, a mapping
    by ``resolution``, or a callable of the params); otherwise the documented
    price table the query answer's ``usage.consumeMoney`` uses, which falls back
    to 0.10 for endpoints it does not list.
    """
    price: object = getattr(catalogued(path), "price", None)
    if callable(price):
        price = price(params)
    if isinstance(price, Mapping) and price:
        resolution = params.get("resolution")
        chosen = price.get(resolution) if isinstance(resolution, str) else None
        numbers = [n for n in (_number(v) for v in price.values()) if n is not None]
        price = chosen if chosen is not None else (min(numbers) if numbers else None)
    found = _number(price)
    return found if found is not None else float(price_of(path, params))


def _price_error(code: str, message: str | None = None) -> dict[str, Any]:
    return {
        "errorCode": code,
        "errorMessage": message if message is not None else message_for(code),
    }


def _record(
    rid: str, kind: str, name: str, base: str, tags: tuple[int, ...], created: float
) -> dict[str, Any]:
    return {
        "id": rid,
        "resourceName": name,
        "resourceType": kind,
        "createTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(created)),
        "desc": "",
        "nodeModelName": name,
        "posterUrl": "",
        "thumbnailUrl": "",
        "owner": {"name": "RunningHub", "avatar": ""},
        "tags": [{"id": t, "name": _TAGS.get(t, "")} for t in tags],
        "versions": [
            {
                "id": f"{rid}01",
                "version": "v1",
                "versionResourceName": name,
                "baseModel": base,
                "baseModelSubtype": "",
                "triggerWords": "",
                "desc": "",
                "posterInfos": [],
            }
        ],
    }


def _page_args(body: Mapping[str, object]) -> tuple[int, int] | str:
    current, size = body.get("current", 1), body.get("size", 10)
    if isinstance(current, bool) or not isinstance(current, int) or current < 1:
        return "current must be an integer >= 1"
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= _MAX_PAGE:
        return f"size must be an integer from 1 to {_MAX_PAGE}"
    return current, size


class Misc:
    """Handlers of the v2 api-key list, price-preview and resource-list routes."""

    def __init__(self, ctx: RouteContext, loras: Loras) -> None:
        self._ctx = ctx
        self._loras = loras
        self._started = time.time()

    def _envelope_auth(self, request: web.Request) -> str | web.Response:
        ctx = self._ctx
        key = ctx.bearer(request)
        if key is None:
            return ctx.reject(401, envelope(401, AUTH_FAILED))
        if not ctx.limiter.allow(key):
            return ctx.reject(1003, envelope(1003, "rate limit exceeded"))
        return key

    async def api_keys(self, request: web.Request) -> web.Response:
        """``GET /openapi/v2/api-key/list``."""
        key = self._envelope_auth(request)
        if isinstance(key, web.Response):
            return key
        spent: dict[str, float] = {}
        for task in self._ctx.book.view.values():
            if task.status == "SUCCESS":
                cost = float(price_of(task.endpoint, task.params))
                spent[task.api_key] = spent.get(task.api_key, 0.0) + cost
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self._started))
        data = [
            {
                "key": mask_key(k),
                "apiKeyName": f"key-{n}",
                "status": 1,
                "quotaLimit": None,
                "quotaUsed": round(spent.get(k, 0.0), 2),
                "visible": True,
                "expireAt": None,
                "expireInMinute": None,
                "createdAt": created,
            }
            for n, k in enumerate(self._ctx.config.api_keys, start=1)
        ]
        return json_response(envelope(0, "success", data))

    async def price_preview(self, request: web.Request) -> web.Response:
        """``POST /openapi/v2/price-preview/{path}``."""
        ctx = self._ctx
        key = ctx.bearer(request)
        if key is None:
            return ctx.reject("1002", _price_error("1002"))
        if not ctx.limiter.allow(key):
            return ctx.reject("1003", _price_error("1003"))
        path = request.match_info["path"]
        if not is_known(path):
            return ctx.reject("1000", _price_error("1000"))
        body = await ctx.json_body(request)
        if not isinstance(body, dict):
            problem = join_problems(["the body must be a JSON object"])
            return ctx.reject("1007", _price_error("1007", problem))
        params = {k: v for k, v in body.items() if k != "webhookUrl"}
        price = round(preview_price(path, params), 4)
        currency = ctx.config.currency
        return json_response(
            {
                "errorCode": "",
                "errorMessage": "",
                "estimatedPrice": price,
                "currency": currency,
                "priceText": f"预计消耗 {price:.2f} {currency}",
                "priceTextEn": f"Estimated cost {price:.2f} {currency}",
                "freeLimit": False,
                "freeLimitCount": None,
                "remainingFreeLimitCount": None,
                "isFreeThisCall": False,
            }
        )

    async def resources(self, request: web.Request) -> web.Response:
        """``POST /openapi/v2/resource/list``."""
        ctx = self._ctx
        key = self._envelope_auth(request)
        if isinstance(key, web.Response):
            return key
        body = await ctx.json_body(request)
        if not isinstance(body, dict):
            return ctx.reject(301, envelope(301, "PARAMS_INVALID: the body must be a JSON object"))
        page = _page_args(body)
        if isinstance(page, str):
            return ctx.reject(301, envelope(301, f"PARAMS_INVALID: {page}"))
        current, size = page
        records = self._matching(key, body)
        total = len(records)
        pages = math.ceil(total / size)
        data = {
            "records": records[(current - 1) * size : current * size],
            "size": size,
            "current": current,
            "total": total,
            "pages": pages,
            "hasNext": current < pages,
            "hasPrevious": current > 1 and total > 0,
        }
        return json_response(envelope(0, "success", data))

    def _matching(self, key: str, body: Mapping[str, object]) -> list[dict[str, Any]]:
        every = [_record(*row, self._started) for row in _PUBLIC_MODELS]
        every += [
            _record(f"2{n:03d}", "LORA", lora.name, "", (), lora.created_at)
            for n, lora in enumerate(self._loras.received, start=1)
            if lora.api_key == key
        ]
        kind = body.get("resourceType")
        name = body.get("resourceName")
        raw_bases, raw_tags = body.get("baseModels"), body.get("tags")
        bases = (
            {b for b in raw_bases if isinstance(b, str)} if isinstance(raw_bases, list) else set()
        )
        tags = {t for t in raw_tags if isinstance(t, int)} if isinstance(raw_tags, list) else set()
        out = []
        for record in every:
            if isinstance(kind, str) and kind and record["resourceType"] != kind.upper():
                continue
            if isinstance(name, str) and name.lower() not in record["resourceName"].lower():
                continue
            if bases and record["versions"][0]["baseModel"] not in bases:
                continue
            if tags and not {t["id"] for t in record["tags"]} & tags:
                continue
            out.append(record)
        return out
