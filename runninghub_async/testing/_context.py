"""What the route modules beyond `_handlers` share: state, auth checks and answers.

The v2 routes authenticate with ``Authorization: Bearer <key>`` and are rate
limited per key (the same token bucket as submit and query); the legacy routes
take the key from the body (``apiKey``) and are not rate limited.
"""

from __future__ import annotations

import functools
import json
from collections.abc import MutableMapping
from typing import Any

import attrs
from aiohttp import web

from ._bodies import envelope
from ._config import FakeConfig
from ._ratelimit import KeyedRateLimiter
from ._state import TaskBook

__all__ = ["AUTH_FAILED", "INVALID", "RouteContext", "json_response", "mask_key", "task_id_of"]

AUTH_FAILED = "ApiKey verification failed: API Key不存在"

_dumps = functools.partial(json.dumps, ensure_ascii=False)


class _Invalid:
    """Marks a body that is not JSON."""


INVALID = _Invalid()


def json_response(body: object, status: int = 200) -> web.Response:
    """*body* as JSON, non-ASCII kept readable like the real service."""
    return web.json_response(body, status=status, dumps=_dumps)


def task_id_of(body: object, field: str = "taskId") -> str | None:
    """The task id in *body*: a non-empty string, or an int (the legacy schema says int64)."""
    value = body.get(field) if isinstance(body, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def mask_key(key: str) -> str:
    """An API key as listings show it: the ends kept, the middle starred."""
    if len(key) <= 6:
        return "*" * len(key)
    return f"{key[:3]}{'*' * (len(key) - 6)}{key[-3:]}"


@attrs.define(kw_only=True)
class RouteContext:
    """The fake's shared state as the extra route modules see it."""

    config: FakeConfig
    book: TaskBook
    limiter: KeyedRateLimiter
    uploads: MutableMapping[str, bytes]
    keys: frozenset[str] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.keys = frozenset(self.config.api_keys)

    def bearer(self, request: web.Request) -> str | None:
        """The accepted key in the ``Authorization: Bearer`` header, or None."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token in self.keys else None

    def body_key(self, body: object, field: str = "apiKey") -> str | None:
        """The accepted key in a legacy JSON body, or None."""
        key = body.get(field) if isinstance(body, dict) else None
        return key if isinstance(key, str) and key in self.keys else None

    def reject(self, code: str | int, body: dict[str, Any], status: int = 200) -> web.Response:
        """An error answer, counted under *code* in ``stats.rejections``."""
        self.book.counters.rejections[str(code)] += 1
        return json_response(body, status)

    def legacy_error(self, code: int, msg: str, data: object = None) -> web.Response:
        """A rejected legacy call: ``{"code", "msg", "data"}``."""
        return self.reject(code, envelope(code, msg, data))

    def bad_legacy_key(self) -> web.Response:
        """The legacy answer to a missing or unknown ``apiKey``: 806, as observed for a fake key."""
        return self.legacy_error(806, "APIKEY_USER_NOT_FOUND")

    async def legacy_task(self, request: web.Request) -> tuple[str, str] | web.Response:
        """``(key, taskId)`` of a legacy task call, or its documented refusal (806, 301)."""
        body = await self.json_body(request)
        key = self.body_key(body)
        if key is None:
            return self.bad_legacy_key()
        task_id = task_id_of(body)
        if task_id is None:
            return self.legacy_error(301, "PARAMS_INVALID: taskId is required")
        return key, task_id

    @staticmethod
    async def json_body(request: web.Request) -> object:
        """The decoded JSON body, or `INVALID`."""
        raw = await request.read()
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return INVALID
