"""A submit's request, built and checked in the caller's task before anything is sent.

Everything a caller can get wrong is found here, before a slot is taken, a file is
uploaded or a request leaves: the endpoint (a catalogued name or a safe relative
path), the params (against the model's catalogued schema, local files' sizes
included), and JSON encoding (NaN, infinities and types JSON cannot carry are
refused, naming the field).  Local files in media fields are uploaded once each
and replaced by their URLs.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import attrs

from . import _catalog
from ._catalog import Catalog
from ._config import check_base_url
from ._errors import invalid_parameter
from ._json import UNENCODABLE, encode_json, is_task_id, unencodable
from ._specs import EndpointSpec, ParamSpec
from ._uploads import LocalFile, inspect_local

__all__ = [
    "LOCAL_PLACEHOLDER",
    "TOKEN_PARAM",
    "Preparer",
    "Request",
    "check_encodable",
    "check_webhook_url",
    "endpoint_path",
    "task_id_of",
]

LOCAL_PLACEHOLDER: Final = "local-file"
"""What stands in for a local file when a body is checked before its uploads."""

TOKEN_PARAM: Final = "rh_token"
"""The query parameter of ``webhook_url`` that carries a task's secret token."""

# Path segments: letters, digits and a few marks; never "..", "%", a scheme or a query.
_SEGMENT: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\[\]-]*")
# Endpoint strings remembered with their checked paths (a bound, not a working set).
_MAX_PATHS: Final = 4096
# Paths below /openapi/v2/ that are not models: AI apps and workflows.
_RUNS: Final = "run/"

Upload = Callable[[LocalFile, str, ParamSpec], Awaitable[str]]


@attrs.frozen
class Request:
    """A submit ready to send: its path below ``/openapi/v2/`` and its encoded body."""

    path: str
    body: bytes
    params: Mapping[str, Any]
    webhook_token: str | None = None


def endpoint_path(catalog: Catalog, endpoint: object) -> str:
    """*endpoint* (a path or documented name) as a safe path below ``/openapi/v2/``.

    Raises:
        TypeError: *endpoint* is not a str.
        InvalidParametersError: it is not a path RunningHub could serve
            (``..``, ``%`` escapes, control characters, a scheme or a query).
    """
    if not isinstance(endpoint, str):
        raise TypeError(f"endpoint must be a str, got {type(endpoint).__name__}")
    try:
        path = catalog.resolve_endpoint(endpoint)
    except ValueError:
        path = ""
    if not path or not all(_SEGMENT.fullmatch(s) and s != ".." for s in path.split("/")):
        raise invalid_parameter(
            "endpoint",
            "is not an endpoint path or model name",
            value=endpoint,
            allowed="segments of letters, digits, '.', '_' and '-', like 'rhart-image-n-pro/edit'",
        )
    return path


def task_id_of(task_id: object) -> str:
    """*task_id* as the digits of a RunningHub task id.

    Raises:
        ValueError: it is not one.
    """
    text = str(task_id).strip()
    if not is_task_id(text):
        raise ValueError(f"not a RunningHub task id: {text[:60]!r}")
    return text


def _is_local(value: object) -> bool:
    return isinstance(value, os.PathLike | bytes | bytearray | memoryview) or callable(
        getattr(value, "read", None)
    )


class Preparer:
    """Builds `Request`s for one client: its catalog, validation switch and webhook URL."""

    def __init__(self, catalog: Catalog, *, validate: bool, webhook_url: str | None) -> None:
        self.catalog = catalog
        self._validate = validate
        self._webhook_url = webhook_url
        # Per endpoint string and per spec, what every submit would work out again.
        self._paths: dict[str, str] = {}
        self._specs: dict[str, EndpointSpec] = {}
        self._media: dict[int, tuple[ParamSpec, ...]] = {}

    def check(self, endpoint: object, params: object) -> tuple[str, EndpointSpec | None]:
        """The endpoint's path and spec, after every check that needs no I/O.

        Raises:
            TypeError: *params* is not a mapping with str keys, or *endpoint* not a str.
            InvalidParametersError: an unknown model (``field`` ``"endpoint"``,
                with the closest names) or params that break its schema.
        """
        path = self._paths.get(endpoint) if isinstance(endpoint, str) else None
        if path is None:
            path = endpoint_path(self.catalog, endpoint)
            if len(self._paths) >= _MAX_PATHS:
                self._paths.clear()
            self._paths[endpoint] = path  # type: ignore[index]
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping, got {type(params).__name__}")
        for name in params:
            if not isinstance(name, str):
                raise invalid_parameter("params", "has a key that is not a str", value=name)
        if not self._validate or path.startswith(_RUNS):
            return path, None
        spec = self._specs.get(path)
        if spec is None:
            spec = self._specs[path] = self.catalog.require(path)  # bounded by the catalog
        self._raise_violations(spec, params, None)
        return path, spec

    def _raise_violations(
        self, spec: EndpointSpec, body: Mapping[str, Any], sizes: Mapping[str, int] | None
    ) -> None:
        problems = self.catalog.violations(spec, body, image_sizes=sizes)
        if problems:
            raise _catalog.invalid_parameters(spec, problems)

    async def localise(
        self, spec: EndpointSpec | None, params: Mapping[str, Any], upload: Upload
    ) -> dict[str, Any]:
        """*params* with local files in media fields uploaded and replaced by URLs.

        Every file is measured and checked against the model's limits, and the
        rest of the body checked to encode as JSON, before the first upload, so
        a bad call uploads nothing.
        """
        body = dict(params)
        if spec is None:
            return body
        found = list(self._local_items(spec, body))
        if not found:
            return body
        # Encoding is otherwise checked by `finish`, after the uploads: check the
        # body now, with placeholders for its files (only here, where it uploads).
        check_encodable(_with_placeholders(body, found), spec.path)
        locals_ = [await inspect_local(item) for _, _, item in found]
        self._raise_violations(spec, body, {f.label: f.size for f in locals_})
        for (param, index, _), local in zip(found, locals_, strict=True):
            field = param.name if index is None else f"{param.name}[{index}]"
            _put(body, param, index, await upload(local, field, param))
        return body

    def media_params(self, spec: EndpointSpec) -> tuple[ParamSpec, ...]:
        """The params of *spec* that take files (and so may hold local ones)."""
        media = self._media.get(id(spec))
        if media is None:
            media = self._media[id(spec)] = tuple(p for p in spec.params if p.is_media)
        return media

    def has_local_media(self, spec: EndpointSpec | None, params: Mapping[str, Any]) -> bool:
        """Whether `localise` has anything to upload (else ``dict(params)`` is the body)."""
        return spec is not None and next(self._local_items(spec, params), None) is not None

    def _local_items(
        self, spec: EndpointSpec, params: Mapping[str, Any]
    ) -> Iterator[tuple[ParamSpec, int | None, Any]]:
        """``(param, index in its list or None, item)`` of each local file in *params*."""
        for param in self.media_params(spec):
            value = params.get(param.name)
            if value is None:
                continue
            if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
                yield from ((param, i, item) for i, item in enumerate(value) if _is_local(item))
            elif _is_local(value):
                yield param, None, value

    def finish(
        self, path: str, body: dict[str, Any], params: Mapping[str, Any], webhook_url: str | None
    ) -> Request:
        """The encoded request, with a webhook URL (and its per-task token) added."""
        token = None
        if webhook_url is not None:
            body["webhookUrl"] = webhook_url  # checked by the caller, before any upload
        elif self._webhook_url is not None:
            token = secrets.token_urlsafe(18)
            joiner = "&" if "?" in self._webhook_url else "?"
            body["webhookUrl"] = f"{self._webhook_url}{joiner}{TOKEN_PARAM}={token}"
        return Request(path, _encoded(body, path), params, token)


def check_webhook_url(url: object) -> str:
    """*url* as given, if RunningHub can call it back: an absolute http(s) URL of a host.

    Raises:
        TypeError: *url* is not a str.
        InvalidParametersError: anything else is wrong with it (a ValueError too).
    """
    try:
        return check_base_url(url, name="webhook_url", query=True)
    except ValueError as exc:
        problem = str(exc).removeprefix("webhook_url ")
        raise invalid_parameter("webhook_url", problem) from None


def _with_placeholders(
    body: Mapping[str, Any], found: Sequence[tuple[ParamSpec, int | None, Any]]
) -> dict[str, Any]:
    """*body* with each local file of *found* replaced by `LOCAL_PLACEHOLDER`."""
    plain = dict(body)
    for param, index, _ in found:
        _put(plain, param, index, LOCAL_PLACEHOLDER)
    return plain


def _put(body: dict[str, Any], param: ParamSpec, index: int | None, value: Any) -> None:
    """Set *param* of *body* to *value*, or item *index* of it (a fresh list: *params*
    as the caller passed them are never changed)."""
    if index is None:
        body[param.name] = value
    else:
        items = list(body[param.name])
        items[index] = value
        body[param.name] = items


def check_encodable(body: Mapping[str, Any], path: str) -> None:
    """Refuse *body* unless it encodes as JSON (local files replaced by placeholders).

    For the calls that upload before they submit: what the submit would refuse
    is refused before any upload.

    Raises:
        InvalidParametersError: ``field`` names the value JSON cannot hold.
    """
    _encoded(body, path)


def _encoded(body: Mapping[str, Any], path: str) -> bytes:
    """*body* as JSON, or an `InvalidParametersError` naming the field JSON cannot hold."""
    try:
        return encode_json(body)
    except UNENCODABLE:
        pass
    for name, value in body.items():
        try:
            encode_json(value)
        except UNENCODABLE as exc:
            raise invalid_parameter(
                name, unencodable(value, exc), value=value, endpoint=path
            ) from None
    raise invalid_parameter("params", "cannot be encoded as JSON", endpoint=path)
