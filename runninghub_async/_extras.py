"""The rest of RunningHub's API on `RunningHub`: app and workflow runs, prices, webhooks,
keys, resources, LoRA uploads, and ``request()`` for any route.

A mixin so that the client facade stays a facade (like ``_helpers.ImageHelpers``).
App and workflow runs (``_app_runs``) go through ``submit``; the other calls go
through ``Api``, so they share the key, the request budget, retries of safe
calls and the error mapping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio

from . import _catalog, _uploads
from ._app_runs import AppRuns
from ._errors import APIError, InvalidParametersError, invalid_parameter
from ._extras_models import ApiKeyInfo, LoraUpload, Price, ResourcePage, WebhookDetail
from ._json import UNENCODABLE, encode_json, unencodable
from ._prepare import check_webhook_url, endpoint_path, task_id_of
from ._pricing import catalog_price, checked_price, preview_params

if TYPE_CHECKING:
    from ._api import Api
    from ._config import ClientConfig
    from ._prepare import Preparer

__all__ = ["ApiExtras"]

_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_LEGACY_PREFIXES: Final = ("/task/openapi/", "/api/openapi/", "/uc/openapi/")
_ACCOUNT_PATH: Final = "/uc/openapi/accountStatus"
# The price preview does not know the endpoint (errorCode 1000, as for any unknown v2 path).
_NO_PREVIEW_CODES: Final = frozenset({"1000"})
_LORA_MAX_BYTES: Final = 8 * 1024 * 1024 * 1024


def _items(name: str, value: object, kind: type[Any]) -> list[Any]:
    """*value* as a list of *kind*: one *kind* alone is one item.

    A str is a sequence of letters: taken item by item, ``"FLUX.1"`` would be
    sent as six base models.

    Raises:
        TypeError: *value* is not a *kind* nor a sequence of them.
    """
    if isinstance(value, kind) and not isinstance(value, bool):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        items = list(value)
        if all(isinstance(item, kind) and not isinstance(item, bool) for item in items):
            return items
    kind_name = kind.__name__
    raise TypeError(f"{name} must be one {kind_name} or a list of {kind_name}s, got {value!r}")


class ApiExtras(AppRuns):
    """`AppRuns`, and ``price``, webhooks, keys, resources, LoRAs and ``request``."""

    if TYPE_CHECKING:
        _config: ClientConfig
        _prepare: Preparer
        _upload_cache: _uploads.UploadCache

        @property
        def _api(self) -> Api: ...

    # -- prices --------------------------------------------------------------------------

    async def price(self, model: str, params: Mapping[str, Any]) -> Price:
        """What one call of *model* with *params* would cost, before spending anything.

        Asks RunningHub's price preview (``/openapi/v2/price-preview/<endpoint>``,
        one request, nothing is created).  Where the preview gives no price, or
        does not know the endpoint (errorCode 1000), the packaged catalog's price
        is used instead: ``source`` is then ``"catalog"``, in CNY, possibly out
        of date.  Local files in *params* are not uploaded: a placeholder stands
        in for them.

        Args:
            model: an endpoint path or documented name, or ``"run/ai-app/<id>"``.
            params: the body you would submit.

        Raises:
            InvalidParametersError: the model or params are not valid (checked
                locally for catalogued models, as ``submit`` does; nothing sent).
            LookupError: neither RunningHub nor the catalog has a price for it.
            ProtocolError: the preview's price is negative, NaN or infinite.
            APIError, TransportError: the preview failed.
        """
        path = endpoint_path(self._prepare.catalog, model)
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping, got {type(params).__name__}")
        spec = _catalog.lookup(path) if self._config.validate else None
        if spec is not None:
            problems = _catalog.violations(spec, params)
            if problems:
                raise _catalog.invalid_parameters(spec, problems)
        try:
            body = encode_json(preview_params(params))
        except UNENCODABLE as exc:
            raise invalid_parameter("params", unencodable(params, exc), endpoint=path) from None
        try:
            found = await self._api.price_preview(path, body)
        except APIError as exc:
            if exc.code not in _NO_PREVIEW_CODES or isinstance(exc, InvalidParametersError):
                raise
            fallback = catalog_price(path, params)
            if fallback is None:
                raise
            return fallback
        if found is not None:
            checked_price(found, f"the price RunningHub's preview gave for {path}")
            return Price(
                found.amount,
                found.currency,
                found.text,
                source="api",
                endpoint=path,
                text_en=found.text_en,
                free=found.free,
                free_calls_left=found.free_calls_left,
            )
        fallback = catalog_price(path, params)
        if fallback is None:
            raise LookupError(f"no price known for {path}: RunningHub gave none, nor the catalog")
        return fallback

    # -- webhooks, keys, resources -------------------------------------------------------

    async def webhook_detail(self, task_id: str) -> WebhookDetail:
        """RunningHub's record of *task_id*'s webhook: where it went, how it was answered.

        Raises:
            ValueError: *task_id* is not a task id.
            TaskNotFoundError: no webhook event for that task (code 1).
            APIError, TransportError: the call failed.
        """
        return await self._api.webhook_detail(task_id_of(task_id))

    async def resend_webhook(self, task_id: str, *, webhook_url: str | None = None) -> None:
        """Have RunningHub send *task_id*'s webhook again (to *webhook_url* if given).

        Raises:
            Everything ``webhook_detail`` raises.
        """
        if webhook_url is not None:
            webhook_url = check_webhook_url(webhook_url)
        detail = await self.webhook_detail(task_id)
        await self._api.retry_webhook(detail.id, webhook_url)

    async def api_keys(self) -> tuple[ApiKeyInfo, ...]:
        """The account's API keys (masked), with their quotas (``/openapi/v2/api-key/list``)."""
        return await self._api.api_keys()

    async def resources(
        self,
        resource_type: str | None = None,
        *,
        name: str | None = None,
        base_models: Sequence[str] | str = (),
        tags: Sequence[int] | int = (),
        page: int = 1,
        page_size: int = 10,
    ) -> ResourcePage:
        """One page of the model files RunningHub offers (``/openapi/v2/resource/list``).

        Args:
            resource_type: ``"LORA"``, ``"CHECKPOINT"``, ``"UNET"``, ... (None: every type).
            name: part of the file name to look for.
            base_models: only these base models (``["FLUX.1"]``; a str is one).
            tags: only resources with one of these tag ids (an int is one).
            page: the page, from 1.
            page_size: resources per page, 1 to 50.

        Raises:
            TypeError: an argument of the wrong type (nothing sent).
            ValueError: *page* or *page_size* out of range (nothing sent).
            APIError, TransportError: the call failed.
        """
        if resource_type is not None and not isinstance(resource_type, str):
            raise TypeError(f"resource_type must be a str or None, got {resource_type!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str or None, got {name!r}")
        models = _items("base_models", base_models, str)
        tag_ids = _items("tags", tags, int)
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise ValueError(f"page must be an int >= 1, got {page!r}")
        if isinstance(page_size, bool) or not isinstance(page_size, int):
            raise ValueError(f"page_size must be an int from 1 to 50, got {page_size!r}")
        if not 1 <= page_size <= 50:
            raise ValueError(f"page_size must be an int from 1 to 50, got {page_size!r}")
        body: dict[str, Any] = {"current": page, "size": page_size}
        if resource_type is not None:
            body["resourceType"] = resource_type
        if name is not None:
            body["resourceName"] = name
        if models:
            body["baseModels"] = models
        if tag_ids:
            body["tags"] = tag_ids
        return await self._api.resources(body)

    # -- LoRA ------------------------------------------------------------------------------

    async def upload_lora(self, source: Any, *, name: str) -> LoraUpload:
        """Upload a LoRA file for your workflows (``getLoraUploadUrl``, then a PUT).

        The file is streamed twice (once for its MD5, which RunningHub signs the
        upload URL for, once to send it) and never read whole into memory; the
        PUT goes to the pre-signed URL on the session that carries no key.

        Args:
            source: a ``pathlib.Path``, bytes or a binary file object.
            name: the LoRA's name (``loraName``).

        Returns:
            The upload; pass its ``file_name`` to a LoRA loader node.

        Raises:
            ValueError: *name* is empty, or the file is empty.
            OSError: the file cannot be read.
            APIError, TransportError: RunningHub or the file host refused or failed.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name must be a non-empty str")
        local = await _uploads.inspect_local(source, read_limit=_LORA_MAX_BYTES)
        if local.size == 0:
            raise ValueError(f"{local.label} is empty")
        api = self._api
        transport = api.transport
        async with _uploads._reader(local) as reader:
            chunks = _uploads._chunks(local, reader)
            digest = hashlib.md5(usedforsecurity=False)
            async for chunk in chunks():
                await anyio.to_thread.run_sync(digest.update, chunk)
            md5 = digest.hexdigest()
            grant = await api.lora_upload_url(name.strip(), md5)

            async def put() -> None:
                await transport.put_file(grant.url, chunks, local.size)

            await transport.retrying(put, "LoRA upload")
        return LoraUpload(name.strip(), grant.file_name, md5, local.size)

    # -- any route ---------------------------------------------------------------------------

    async def request(self, method: str, path: str, json: Any = None) -> Any:
        """Call any RunningHub route and return its decoded JSON answer.

        The key, the request budget and the error mapping apply as for every
        other call: an error code in any documented shape (v2 ``errorCode``,
        legacy ``{code, msg}``) raises its typed error.  Legacy routes
        (``/task/openapi/...``, ``/api/openapi/...``, ``/uc/openapi/...``) get
        the key in their JSON object body as they require (``apiKey``;
        ``apikey`` for accountStatus) unless it is there already.  GET calls are
        retried on transient failures; others are sent once.  It takes no job
        slot and follows no task: to run a task use ``submit``.

        Args:
            method: ``"GET"``, ``"POST"``, ``"PUT"``, ``"PATCH"`` or ``"DELETE"``.
            path: the path on the API host, from ``/`` (``"/openapi/v2/queue/status"``).
            json: the JSON body, if any.

        Raises:
            ValueError: a bad method or path, or a path carrying the API key (the
                key never goes into a URL).
            APIError: RunningHub answered with an error (the subclass says which).
            TransportError: no usable answer.
        """
        verb = method.upper() if isinstance(method, str) else ""
        if verb not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(sorted(_METHODS))}, got {method!r}")
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or path.startswith("//")
            or any(ch.isspace() or ord(ch) < 32 for ch in path)
            or ".." in path.split("?")[0].split("/")
        ):
            raise ValueError(f"path must be a path on the API host (/openapi/v2/...): {path!r}")
        key = self._config.api_key
        if key and key in path:
            raise ValueError("the API key must not go into a URL; legacy bodies get it added")
        body = json
        if path.startswith(_LEGACY_PREFIXES) and (body is None or isinstance(body, Mapping)):
            field = "apikey" if path.split("?")[0] == _ACCOUNT_PATH else "apiKey"
            body = {field: key, **(body or {})}
        try:
            encode_json(body)
        except UNENCODABLE as exc:
            raise ValueError(f"json {unencodable(body, exc)}") from None
        return await self._api.call(verb, path, json_body=body, retry=verb == "GET")
