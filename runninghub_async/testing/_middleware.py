"""The middleware in front of every RunningHub route: it counts requests and injects faults.

Control routes (names starting with ``_fake``) pass straight through, neither
counted nor faulted, so a test can always inspect and steer the fake.  A route's
fault route is its name up to the first dot (``"download.outputs"`` is a
``"download"``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
from aiohttp import web

from ._faults import FAULT_ROUTES, Fault, FaultPlan
from ._state import TaskBook

__all__ = ["FaultMiddleware", "Handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""An aiohttp request handler, as a middleware receives it."""

_NGINX_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
}


def _nginx_page(status: int) -> str:
    title = f"{status} {_NGINX_REASONS.get(status, 'Error')}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _truncated(response: web.StreamResponse) -> web.Response:
    body = response.body if isinstance(response, web.Response) else None
    raw = body if isinstance(body, bytes) else b"{}"
    cut = raw[: max(len(raw) // 2, 1)] if len(raw) > 1 else b"{"
    content_type = response.content_type
    if content_type.startswith("text/"):
        content_type = "application/json"
    return web.Response(status=200, body=cut, content_type=content_type)


class FaultMiddleware:
    """Counts each request in *book*, then applies the fault *faults* picks for it, if any.

    Register the bound `handle` as the application's middleware.
    """

    def __init__(self, book: TaskBook, faults: FaultPlan) -> None:
        self._book = book
        self._faults = faults

    @web.middleware
    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count, maybe fault, and answer *request*; every outcome wakes `wait_for`."""
        name = request.match_info.route.name or ""
        if name.startswith("_fake"):
            return await handler(request)
        self._book.counters.requests_total += 1
        self._book.counters.requests_by_route[name] += 1
        try:
            route = name.partition(".")[0]
            fault = self._faults.pick(route) if route in FAULT_ROUTES else None
            if fault is None:
                return await handler(request)
            self._book.counters.faults_injected[fault.kind] += 1
            return await self._inject(fault, request, handler)
        finally:
            self._book.notify()

    @staticmethod
    async def _inject(fault: Fault, request: web.Request, handler: Handler) -> web.StreamResponse:
        kind = fault.kind
        if kind.startswith("http_"):
            status = int(kind.removeprefix("http_"))
            return web.Response(status=status, text=_nginx_page(status), content_type="text/html")
        if kind == "reset":
            _abort(request)
            # Writing this to the aborted transport fails quietly inside aiohttp.
            return web.Response()
        response = await handler(request)
        if kind == "slow":
            # The request takes effect at once and only the answer is late, like a
            # busy network path: a client that gives up still leaves its task behind.
            await anyio.sleep(fault.delay)
            return response
        if kind == "malformed_json":
            return _truncated(response)
        _abort(request)  # drop_after_accept: the task exists, the answer never leaves
        return response
