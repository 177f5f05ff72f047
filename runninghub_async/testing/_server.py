"""`FakeRunningHub`: a real HTTP server on 127.0.0.1 that behaves like RunningHub."""

from __future__ import annotations

import random
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Self

import anyio

from ._config import make_config
from ._context import RouteContext
from ._durations import DurationSpec, check_duration
from ._extra_routes import ExtraRoutes
from ._faults import Fault, FaultPlan
from ._handlers import Routes
from ._models import FakeStats, FakeTask
from ._ratelimit import KeyedRateLimiter
from ._registry import Registry, default_apps, default_workflows
from ._serving import serve
from ._state import TaskBook, TaskRecord

__all__ = ["FakeRunningHub"]


class FakeRunningHub(anyio.AsyncContextManagerMixin):
    """A fake RunningHub API server for tests, demos and benchmarks.

    It binds a real socket, speaks HTTP, and answers field for field like
    runninghub-api.md describes: submit and query on the v2 task endpoints,
    upload, queue status, the legacy account and cancel endpoints, result files
    and webhooks.  Tasks move QUEUED -> RUNNING -> SUCCESS | FAILED on timers, or
    end on `finish` / `fail` / a cancel request.

    Example::

        async with FakeRunningHub(duration=None) as fake:
            ...  # submit to fake.base_url with key fake.api_key
            await fake.wait_for(lambda f: f.stats.accepted_tasks == 1)
            fake.finish(next(iter(fake.tasks)))

    Args:
        api_keys: the keys the fake accepts; the first is `api_key`.
        key_types: ``apiType`` per key (``"NORMAL"``, ``"SHARED"``, ``"EXCLUSIVE"``);
            unlisted keys are ``"SHARED"``.  A NORMAL or EXCLUSIVE key calling a
            standard-model endpoint gets errorCode 1014.
        duration: how long a task stays RUNNING: seconds, a ``(min, max)``
            uniform range, a callable ``(FakeTask) -> float | None`` such as
            `lognormal`, or None for "until `finish`/`fail`/cancel".
        queue_time: how long a task stays QUEUED first, in the same forms.  A
            submit answers ``"QUEUED"`` when its task's queue time is above 0
            (or None), else ``"RUNNING"``.
        concurrency_limit: tasks a key may have not yet terminal (QUEUED +
            RUNNING); a submit over it gets errorCode 421 and creates nothing.
            None means no limit.
        rate_limit: requests per second per key over every ``/openapi/v2`` call
            (token bucket holding ``max(1, rate)``); over it the answer is
            errorCode 1003 (task shape on submit/query, ``{"code": 1003, ...}``
            on upload and queue/status).  None means no limit.
        failure_rate: chance that a task which runs to its end fails.
        failure_codes: the errorCodes a failing task picks from (seeded RNG).
        seed: seeds the one ``random.Random`` behind task ids, client ids,
            durations, failures and fault probabilities.
        faults: `Fault` rules in force from the start (see `add_fault`).
        upload_max_bytes: the largest upload accepted; bigger gets code 809.
        validate: check submits to catalogued nano-banana endpoints (errorCode 1007).
        webhook_attempts: POSTs per webhook before giving up.
        webhook_retry_delay: seconds between webhook attempts.
        webhook_timeout: seconds one webhook POST may take.
        concurrent_limit_report: the ``concurrentLimit`` queue/status reports;
            defaults to *concurrency_limit*, or 50 (the documented enterprise
            default) when there is no limit.
        currency: accountStatus ``currency`` (``"USD"`` mimics runninghub.ai).
        remain_money: accountStatus ``remainMoney``.
        remain_coins: accountStatus ``remainCoins``.
        cancel_not_found_code: the code cancel answers for an unknown task: 423
            per the doc copy; 807 is the other documented candidate.
        apps: AI apps to know besides the defaults, ``{webappId: nodeInfoList}``
            where each node is ``{"nodeId", "fieldName", "fieldValue"?,
            "nodeName"?, "fieldType"?, "description"?}`` (see `add_app`).
        workflows: ComfyUI workflows to know besides the defaults,
            ``{workflowId: API-format prompt}``, i.e. ``{nodeId: {"class_type":
            ..., "inputs": {...}}}`` (see `add_workflow`).
        host: the address to bind.
        port: the port to bind; 0 picks a free one.

    Raises:
        ValueError: a knob is out of range.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("test-key",),
        key_types: Mapping[str, str] | None = None,
        duration: DurationSpec = (0.2, 1.0),
        queue_time: DurationSpec = 0.0,
        concurrency_limit: int | None = None,
        rate_limit: float | None = None,
        failure_rate: float = 0.0,
        failure_codes: Sequence[str] = ("1015", "1501", "1505"),
        seed: int | None = None,
        faults: Iterable[Fault] = (),
        upload_max_bytes: int = 30 * 1024 * 1024,
        validate: bool = True,
        webhook_attempts: int = 3,
        webhook_retry_delay: float = 0.2,
        webhook_timeout: float = 5.0,
        concurrent_limit_report: int | None = None,
        currency: str = "CNY",
        remain_money: str = "999",
        remain_coins: str = "99999",
        cancel_not_found_code: int = 423,
        apps: Mapping[str, Iterable[Mapping[str, object]]] | None = None,
        workflows: Mapping[str, Mapping[str, object]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._config = make_config(
            api_keys=api_keys,
            key_types=key_types,
            concurrency_limit=concurrency_limit,
            rate_limit=rate_limit,
            failure_rate=failure_rate,
            failure_codes=failure_codes,
            upload_max_bytes=upload_max_bytes,
            validate=validate,
            webhook_attempts=webhook_attempts,
            webhook_retry_delay=webhook_retry_delay,
            webhook_timeout=webhook_timeout,
            concurrent_limit_report=concurrent_limit_report,
            currency=currency,
            remain_money=remain_money,
            remain_coins=remain_coins,
            cancel_not_found_code=cancel_not_found_code,
            host=host,
            port=port,
        )
        rng = random.Random(seed)
        self._book = TaskBook(
            rng=rng,
            queue_time=check_duration(queue_time, "queue_time"),
            duration=check_duration(duration, "duration"),
            failure_rate=failure_rate,
            failure_codes=self._config.failure_codes,
            on_end=self._task_ended,
        )
        self._faults = FaultPlan(faults, rng)
        self._uploads: dict[str, bytes] = {}
        # One token bucket per key for every /openapi/v2 route, old and new.
        limiter = KeyedRateLimiter(self._config.rate_limit)
        self._routes = Routes(
            config=self._config,
            book=self._book,
            faults=self._faults,
            uploads=self._uploads,
            limiter=limiter,
        )
        registry = Registry(
            {**default_apps(), **(apps or {})}, {**default_workflows(), **(workflows or {})}
        )
        context = RouteContext(
            config=self._config, book=self._book, limiter=limiter, uploads=self._uploads
        )
        self._extra = ExtraRoutes(context, registry)
        self._base_url: str | None = None

    def __repr__(self) -> str:
        where = self._base_url or "not running"
        return f"<FakeRunningHub {where} tasks={len(self._book.view)} running={self.stats.running}>"

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Self]:
        app = self._routes.build_app()
        self._extra.register(app)
        webhooks = self._extra.webhooks
        async with serve(app, config=self._config, book=self._book, webhooks=webhooks) as url:
            self._base_url = url
            try:
                yield self
            finally:
                self._base_url = None

    def _task_ended(self, record: TaskRecord) -> None:
        self._extra.webhooks.task_ended(record)

    # -- public surface -----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; only while the server runs.

        Raises:
            RuntimeError: the server is not running.
        """
        if self._base_url is None:
            raise RuntimeError("FakeRunningHub is not running: use 'async with'")
        return self._base_url

    @property
    def api_key(self) -> str:
        """The first accepted API key."""
        return self._config.api_keys[0]

    @property
    def tasks(self) -> Mapping[str, FakeTask]:
        """Every accepted task by id, as `FakeTask` snapshots (live view, O(1) lookups)."""
        return self._book.view

    @property
    def stats(self) -> FakeStats:
        """A frozen snapshot of the counters."""
        return self._book.stats()

    @property
    def uploads(self) -> Mapping[str, bytes]:
        """Uploaded files' bytes by ``fileName`` (``"openapi/<sha256 prefix>.<ext>"``)."""
        return MappingProxyType(self._uploads)

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The faults in force."""
        return self._faults.faults

    @property
    def loras(self) -> Mapping[str, bytes]:
        """LoRA files PUT to their pre-signed URL, by ``fileName`` (``api-lora-cn/<md5>...``)."""
        return self._extra.loras.files

    def add_app(
        self,
        webapp_id: str | int,
        nodes: Iterable[Mapping[str, object]],
        *,
        name: str | None = None,
    ) -> None:
        """Know the AI app *webapp_id* from now on (or replace it).

        Args:
            webapp_id: the app's id (``webappId``).
            nodes: its editable fields as ``nodeInfoList`` items: ``{"nodeId",
                "fieldName", "fieldValue"?, "nodeName"?, "fieldType"?,
                "description"?}``.  A run may only set these ``(nodeId, fieldName)``
                pairs; apiCallDemo lists them.
            name: the ``webappName`` apiCallDemo answers.

        Raises:
            ValueError: a node lacks ``nodeId`` or ``fieldName``.
        """
        self._extra.registry.add_app(webapp_id, nodes, name)

    def add_workflow(self, workflow_id: str | int, prompt: Mapping[str, object]) -> None:
        """Know the ComfyUI workflow *workflow_id* from now on (or replace it).

        Args:
            workflow_id: the workflow's id (``workflowId``).
            prompt: its API-format JSON, ``{nodeId: {"class_type": ..., "inputs":
                {...}}}``; getJsonApiFormat answers it, and a run may set any
                ``inputs`` field of any node.

        Raises:
            ValueError: a node has no ``inputs`` object, or the prompt is not JSON.
        """
        self._extra.registry.add_workflow(workflow_id, prompt)

    def add_fault(self, fault: Fault) -> None:
        """Start injecting *fault* (its ``after``/``times`` count from now)."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Stop injecting every fault."""
        self._faults.clear()

    def finish(self, task_id: str) -> None:
        """End a QUEUED or RUNNING task with SUCCESS now.

        Raises:
            KeyError: no such task.
            ValueError: the task already ended.
        """
        self._book.finish(task_id)

    def fail(self, task_id: str, code: str = "1015", message: str | None = None) -> None:
        """End a QUEUED or RUNNING task with FAILED now.

        Args:
            task_id: the task.
            code: its errorCode.
            message: its errorMessage; defaults to the fake's text for *code*.

        Raises:
            KeyError: no such task.
            ValueError: the task already ended.
        """
        self._book.fail(task_id, code, message)

    async def wait_for(
        self,
        predicate: Callable[[FakeRunningHub], bool],
        *,
        # A bounded default keeps a broken test from hanging until pytest-timeout.
        timeout: float | None = 10.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``predicate(fake)`` holds, re-checking it after every state change.

        Every request, transition and webhook outcome counts as a change.

        Raises:
            TimeoutError: *timeout* seconds passed first (None waits forever).
        """
        with anyio.fail_after(timeout):
            await self._book.wait_until(lambda: predicate(self))
