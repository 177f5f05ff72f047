"""The webhook receivers' server side: an ``aiohttp.web`` handler around an answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["CallbackAnswer", "callback_endpoint"]

log = logging.getLogger("runninghub_async")

CallbackAnswer = Callable[
    [str, int | None, Mapping[str, str], Callable[[int], Awaitable[bytes | None]]],
    Awaitable[tuple[int, bytes]],
]


def callback_endpoint(answer: CallbackAnswer) -> Callable[[Any], Awaitable[Any]]:
    """An ``aiohttp.web`` handler around *answer* (the webhook receivers' server side).

    *answer* gets the method, the declared length, the query and a reader of at
    most *n* bytes (None when the body is longer), and returns a status and a
    JSON body.  aiohttp's server half is imported here, on demand: only users
    who mount a receiver load it.
    """
    from aiohttp import web

    async def handler(request: web.Request) -> web.StreamResponse:
        async def read(cap: int) -> bytes | None:
            chunks: list[bytes] = []
            size = 0
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > cap:
                    return None
                chunks.append(chunk)
            return b"".join(chunks)

        try:
            status, body = await answer(
                request.method, request.content_length, request.query, read
            )
        except ConnectionError:
            # The sender hung up mid-body: nobody to answer, and nothing worth an
            # error log (aiohttp logs an escaped exception with its traceback).
            log.debug("webhook: the sender hung up before its body arrived")
            return web.Response(status=400)
        headers = {"Allow": "POST"} if status == 405 else None
        return web.Response(
            status=status, body=body, content_type="application/json", headers=headers
        )

    return handler
