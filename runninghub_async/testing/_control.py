"""The ``/_fake/`` control API: drive the fake from another process (no auth, no faults).

* ``GET /_fake/stats``: `FakeStats` as JSON.
* ``GET /_fake/tasks``: every task with id, endpoint, status, error code, query
  count and its ``submitted_at``/``started_at``/``finished_at`` epoch times.
* ``POST /_fake/tasks/<id>/finish``: SUCCESS now.
* ``POST /_fake/tasks/<id>/fail``: FAILED now; optional body ``{"code": "1015", "message": "..."}``.
* ``POST /_fake/faults``: add a `Fault` given as JSON; ``DELETE /_fake/faults``: clear them.

Unknown task: 404; task already ended: 409; bad body: 400.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

import attrs
from aiohttp import web

from ._faults import FaultPlan, fault_from_json
from ._state import TaskBook

__all__ = ["add_control_routes"]

_dumps = functools.partial(json.dumps, ensure_ascii=False)


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


async def _json_body(request: web.Request) -> object:
    if not request.can_read_body:
        return {}
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return None


class _Control:
    def __init__(self, book: TaskBook, faults: FaultPlan) -> None:
        self._book = book
        self._faults = faults

    async def stats(self, request: web.Request) -> web.Response:
        return _json(attrs.asdict(self._book.stats()))

    async def tasks(self, request: web.Request) -> web.Response:
        return _json(
            [
                {
                    "id": task.task_id,
                    "endpoint": task.endpoint,
                    "status": task.status,
                    "submitted_at": task.submitted_at,
                    "started_at": task.started_at,
                    "finished_at": task.finished_at,
                    "error_code": task.error_code,
                    "query_count": task.query_count,
                }
                for task in self._book.view.values()
            ]
        )

    def _end(self, task_id: str, end: Callable[[], None]) -> web.Response:
        try:
            end()
        except KeyError:
            return _json({"error": f"unknown task {task_id}"}, status=404)
        except ValueError as exc:
            return _json({"error": str(exc)}, status=409)
        return _json({"taskId": task_id, "status": self._book.view[task_id].status})

    async def finish(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        return self._end(task_id, functools.partial(self._book.finish, task_id))

    async def fail(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _json({"error": "the body must be a JSON object"}, status=400)
        code, message = body.get("code", "1015"), body.get("message")
        if not isinstance(code, str | int) or not (message is None or isinstance(message, str)):
            return _json({"error": "code must be a string, message a string"}, status=400)
        return self._end(task_id, functools.partial(self._book.fail, task_id, str(code), message))

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            fault = fault_from_json(await _json_body(request))
        except ValueError as exc:
            return _json({"error": str(exc)}, status=400)
        self._faults.add(fault)
        return _json(attrs.asdict(fault))

    async def clear_faults(self, request: web.Request) -> web.Response:
        self._faults.clear()
        return _json({"faults": 0})


def add_control_routes(app: web.Application, book: TaskBook, faults: FaultPlan) -> None:
    """Register the ``/_fake/`` routes on *app* (their names start with ``_fake``)."""
    control = _Control(book, faults)
    add = app.router
    add.add_get("/_fake/stats", control.stats, name="_fake.stats")
    add.add_get("/_fake/tasks", control.tasks, name="_fake.tasks")
    add.add_post("/_fake/tasks/{task_id}/finish", control.finish, name="_fake.finish")
    add.add_post("/_fake/tasks/{task_id}/fail", control.fail, name="_fake.fail")
    add.add_post("/_fake/faults", control.add_fault, name="_fake.faults")
    add.add_delete("/_fake/faults", control.clear_faults, name="_fake.clear_faults")
