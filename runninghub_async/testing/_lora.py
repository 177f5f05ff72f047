"""LoRA upload: ask for a pre-signed URL, then PUT the file there.

* ``POST /api/openapi/getLoraUploadUrl`` ``{apiKey, loraName, md5Hex}`` ->
  ``data {url, fileName: "api-lora-cn/<md5>.safetensors"}``.
* ``PUT <url>`` (``/files/lora/<md5>.safetensors?signature=..``, no auth, like a
  pre-signed object-store URL): stores the bytes.  An unknown or mismatched
  signature answers 403, a body whose MD5 is not ``md5Hex`` answers 400
  ``BadDigest``; both with an S3-style XML error.  Success is 200 and an empty body.

Uploaded LoRAs show up in ``/openapi/v2/resource/list`` as ``resourceType`` ``LORA``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from types import MappingProxyType

import attrs
from aiohttp import web

from ._bodies import envelope
from ._context import RouteContext, json_response

__all__ = ["Lora", "Loras"]

_MD5 = re.compile(r"[0-9a-fA-F]{32}")


@attrs.frozen
class Lora:
    """One LoRA file the fake received."""

    name: str
    file_name: str
    size: int
    api_key: str = attrs.field(repr=False)
    created_at: float


def _s3_error(status: int, code: str, message: str) -> web.Response:
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=text, content_type="application/xml")


class Loras:
    """Pending upload grants and the LoRAs received through them."""

    def __init__(self, ctx: RouteContext) -> None:
        self._ctx = ctx
        self._grants: dict[str, tuple[str, str, str]] = {}  # md5 -> (signature, name, key)
        self._received: dict[str, bytes] = {}
        self._loras: list[Lora] = []

    @property
    def received(self) -> list[Lora]:
        """The LoRAs uploaded so far, oldest first."""
        return list(self._loras)

    @property
    def files(self) -> Mapping[str, bytes]:
        """The bytes of each LoRA received, by ``fileName``."""
        return MappingProxyType(self._received)

    async def upload_url(self, request: web.Request) -> web.Response:
        """``POST /api/openapi/getLoraUploadUrl``."""
        ctx = self._ctx
        body = await ctx.json_body(request)
        key = ctx.body_key(body)
        if key is None:
            return ctx.bad_legacy_key()
        assert isinstance(body, dict)
        name, md5 = body.get("loraName"), body.get("md5Hex")
        if not isinstance(name, str) or not name.strip():
            return ctx.legacy_error(301, "PARAMS_INVALID: loraName is required")
        if not isinstance(md5, str) or not _MD5.fullmatch(md5):
            return ctx.legacy_error(301, "PARAMS_INVALID: md5Hex must be 32 hex digits")
        md5 = md5.lower()
        signature = f"{ctx.book.client_id()}"
        self._grants[md5] = (signature, name.strip(), key)
        url = f"{ctx.book.base_url}/files/lora/{md5}.safetensors?signature={signature}"
        data = {"url": url, "fileName": f"api-lora-cn/{md5}.safetensors"}
        return json_response(envelope(0, "success", data))

    async def put(self, request: web.Request) -> web.Response:
        """``PUT /files/lora/{md5}.safetensors?signature=..``."""
        if "Authorization" in request.headers:
            self._ctx.book.counters.file_requests_with_auth += 1
        md5 = request.match_info["md5"].lower()
        grant = self._grants.get(md5)
        if grant is None or request.query.get("signature") != grant[0]:
            return _s3_error(403, "SignatureDoesNotMatch", "the signature does not match")
        data = await request.read()
        if hashlib.md5(data).hexdigest() != md5:  # the API's own checksum
            return _s3_error(400, "BadDigest", "the body's MD5 is not the one signed for")
        del self._grants[md5]
        file_name = f"api-lora-cn/{md5}.safetensors"
        self._received[file_name] = data
        _, name, key = grant
        self._loras.append(Lora(name, file_name, len(data), key, time.time()))
        return web.Response(status=200)
