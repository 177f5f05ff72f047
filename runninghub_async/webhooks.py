"""Webhook receivers ready to mount: an aiohttp handler and a plain ASGI app.

With ``RunningHub(webhook_url="https://host/runninghub/webhook")`` every submit
carries that URL plus a per-task secret in the ``rh_token`` query parameter.
Mount a receiver at that path and the client hears of a job's end at once::

    # aiohttp
    app.router.add_post("/runninghub/webhook", aiohttp_handler(client))

    # FastAPI / Starlette (no trailing-slash redirect with a route)
    app.router.add_route("/runninghub/webhook", asgi_app(client), methods=["POST"])

RunningHub does not sign its callbacks, so a receiver trusts none of it: the
token must match the one sent with that task, each task is taken once, and
taking it only makes the client confirm the outcome with one query of its own
(polling stays the safety net).  The answer is the same ``200 {"ok": true}``
whether the callback was taken or ignored, so a forger learns nothing; only a
body that is not a TASK_END callback gets 400.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Protocol
from urllib.parse import parse_qs

import anyio

from . import _prepare, _transport
from ._errors import ClientClosedError

__all__ = [
    "BODY_TIMEOUT",
    "MAX_BODY_BYTES",
    "TOKEN_PARAM",
    "ASGIApp",
    "WebhookClient",
    "aiohttp_handler",
    "asgi_app",
]

log = logging.getLogger("runninghub_async")

TOKEN_PARAM = _prepare.TOKEN_PARAM
"""The query string parameter of ``webhookUrl`` that carries the per-task secret."""

MAX_BODY_BYTES = 1 << 20
"""The largest callback body a receiver reads (RunningHub's are a few kilobytes)."""

BODY_TIMEOUT = 10.0
"""Seconds a receiver waits for a callback's whole body (a sender that stalls gets 408)."""

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]
"""An ASGI 3 application: ``await app(scope, receive, send)``."""


class WebhookClient(Protocol):
    """What a receiver needs of a client: ``RunningHub.handle_webhook``."""

    def handle_webhook(
        self, payload: Mapping[str, Any] | str | bytes, *, token: str | None = None
    ) -> bool:
        """Take a TASK_END callback; True when taken, False when ignored."""
        ...


_OK = (200, b'{"ok": true}')
_NOT_A_CALLBACK = (400, b'{"ok": false, "error": "not a TASK_END callback"}')
_TOO_LARGE = (413, b'{"ok": false, "error": "body too large"}')
_NOT_ALLOWED = (405, b'{"ok": false, "error": "POST only"}')
# RunningHub retries a callback that fails; a client shutting down lets the next one take it.
_CLOSED = (503, b'{"ok": false, "error": "not accepting callbacks"}')
_BROKEN = (500, b'{"ok": false, "error": "internal error"}')
# A stalled body must not hold a connection (and its memory) open for ever.
_TOO_SLOW = (408, b'{"ok": false, "error": "body not received in time"}')


def _take(client: WebhookClient, body: bytes, token: str | None) -> tuple[int, bytes]:
    """Hand one callback to *client*; the answer never says whether it was taken."""
    try:
        taken = client.handle_webhook(body, token=token)
    except ValueError:
        log.debug("webhook: ignored a body that is not a TASK_END callback")
        return _NOT_A_CALLBACK
    except ClientClosedError:
        log.debug("webhook: the client is closed; callback refused")
        return _CLOSED
    except Exception:
        # Logged here, never sent: the caller gets no traceback.
        log.exception("webhook: the client failed to take a callback")
        return _BROKEN
    if log.isEnabledFor(logging.DEBUG):
        log.debug("webhook: callback for %s %s", _task_id(body), "taken" if taken else "ignored")
    return _OK


def _task_id(body: bytes) -> str:
    try:
        return str(json.loads(body).get("taskId"))[:40]
    except (ValueError, AttributeError):
        return "?"


def aiohttp_handler(
    client: WebhookClient, *, max_body: int = MAX_BODY_BYTES, body_timeout: float = BODY_TIMEOUT
) -> Callable[[Any], Awaitable[Any]]:
    """An aiohttp.web handler that passes RunningHub callbacks to *client*.

    Mount it with ``app.router.add_post("/runninghub/webhook", handler)``.  It
    answers 200 ``{"ok": true}`` to every well-formed TASK_END callback, taken or
    ignored (unknown task, wrong token, duplicate), 400 to any other body, 413
    over *max_body* bytes, 408 when the body takes longer than *body_timeout*
    seconds, 405 to anything but POST, and 503 once *client* is closed.  It
    reads the token from the ``rh_token`` query parameter.

    *client* is the async ``RunningHub`` running on the app's own event loop
    (open it in the app's startup, e.g. ``app.cleanup_ctx``).
    """

    async def answer(
        method: str,
        length: int | None,
        query: Mapping[str, str],
        read: Callable[[int], Awaitable[bytes | None]],
    ) -> tuple[int, bytes]:
        if method != "POST":
            return _NOT_ALLOWED
        if (length or 0) > max_body:
            return _TOO_LARGE
        with anyio.move_on_after(body_timeout):
            body = await read(max_body)
            if body is None:
                return _TOO_LARGE
            return _take(client, body, query.get(TOKEN_PARAM))
        return _TOO_SLOW

    _positive("body_timeout", body_timeout)
    return _transport.callback_endpoint(answer)


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


class _ASGIReceiver:
    """The ASGI app ``asgi_app`` returns (a class, so Starlette routes take it as ASGI)."""

    def __init__(self, client: WebhookClient, max_body: int, body_timeout: float) -> None:
        self._client = client
        self._max_body = max_body
        self._body_timeout = body_timeout

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the RunningHub webhook app serves HTTP, not {scope['type']}")
        answer = await self._answer(scope, receive)
        if answer is None:  # the caller went away
            return
        status, body = answer
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        if status == 405:
            headers.append((b"allow", b"POST"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    ) -> tuple[int, bytes] | None:
        if scope["method"] != "POST":
            return _NOT_ALLOWED
        for name, value in scope.get("headers", ()):
            too_long = value.isdigit() and int(value) > self._max_body
            if name.lower() == b"content-length" and too_long:
                return _TOO_LARGE
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self._body_timeout) as timer:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self._max_body:
                    return _TOO_LARGE
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        if timer.cancelled_caught:
            return _TOO_SLOW
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        tokens = query.get(TOKEN_PARAM)
        return _take(self._client, b"".join(chunks), tokens[0] if tokens else None)


async def _lifespan(
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """Served on its own (``uvicorn module:app``), the app has nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def asgi_app(
    client: WebhookClient, *, max_body: int = MAX_BODY_BYTES, body_timeout: float = BODY_TIMEOUT
) -> ASGIApp:
    """A plain ASGI 3 app that passes RunningHub callbacks to *client*.

    No framework needed.  Mount it in FastAPI or Starlette with
    ``app.router.add_route("/runninghub/webhook", app, methods=["POST"])``, or
    ``app.mount("/runninghub/webhook", app)`` (a mount matches the path with a
    trailing slash: put that slash in ``webhook_url``).  Answers as
    `aiohttp_handler` does.  *client* is the async ``RunningHub`` running on the
    server's event loop (open it in the app's lifespan).
    """
    _positive("body_timeout", body_timeout)
    return _ASGIReceiver(client, max_body, body_timeout)
