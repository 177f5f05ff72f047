"""The read-only views of the fake's state that tests see: `FakeTask` and `FakeStats`."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["FakeStats", "FakeTask"]


@attrs.frozen
class FakeTask:
    """A snapshot of one task the fake accepted.

    Snapshots never change: read ``fake.tasks[task_id]`` again for the current
    state.  Times are ``time.time()`` epoch seconds taken at the moment of each
    transition, so ``finished_at`` is exactly when the server made the task
    terminal, whatever the client's polling cadence.

    Attributes:
        task_id: the 19-digit numeric string the submit answered.
        api_key: the key that submitted it (hidden from ``repr``).
        endpoint: the path below ``/openapi/v2/``, e.g. ``"rhart-image-n-pro/edit"``.
        params: the submit body without ``webhookUrl``.
        status: ``"QUEUED"``, ``"RUNNING"``, ``"SUCCESS"``, ``"FAILED"`` or ``"CANCEL"``.
        submitted_at: when the submit was accepted.
        started_at: when it became RUNNING, or None while QUEUED.
        finished_at: when it became terminal, or None.
        error_code: ``""`` unless FAILED (e.g. ``"1015"``).
        error_message: ``""`` unless FAILED; bilingual like the real service.
        failed_reason: ``{}`` unless FAILED; the ComfyUI-style failure details.
        webhook_url: the ``webhookUrl`` the submit carried, or None.
        outputs: result URLs (on the fake) once SUCCESS, else empty.
        query_count: how many ``/openapi/v2/query`` calls asked about it.
    """

    task_id: str
    api_key: str = attrs.field(repr=False)
    endpoint: str
    params: Mapping[str, object]
    status: str
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    error_code: str
    error_message: str
    failed_reason: Mapping[str, object]
    webhook_url: str | None
    outputs: tuple[str, ...]
    query_count: int

    @property
    def terminal(self) -> bool:
        """Whether the task has ended (SUCCESS, FAILED or CANCEL)."""
        return self.finished_at is not None


@attrs.frozen
class FakeStats:
    """Counters of everything the fake saw, as a frozen snapshot.

    Attributes:
        requests_total: HTTP requests to API and file routes (``/_fake/`` excluded).
        submit_requests: requests that reached a task-creating route (standard-model
            submits, v2 and legacy app and workflow runs), accepted or not.
        accepted_tasks: tasks created.
        rejections: error answers by code, as strings, on every route
            (``"421"``, ``"1002"``, ``"1004"``, ``"809"``, ...).
        queries: ``/openapi/v2/query`` requests that passed authentication.
        queries_per_task: queries per known task id (tasks never queried are absent).
        uploads: successful uploads.
        downloads: successful file downloads (outputs and uploads).
        file_requests_with_auth: file requests that carried an ``Authorization`` header.
        cancels: tasks cancelled through the legacy cancel endpoint.
        max_running_per_key: most non-terminal tasks each key had at once.
        running: tasks not yet terminal now (QUEUED + RUNNING).
        queued: tasks QUEUED now.
        succeeded: tasks that ended SUCCESS.
        failed: tasks that ended FAILED.
        cancelled: tasks that ended CANCEL.
        webhook_deliveries: webhooks the receiver acknowledged with a 2xx.
        webhook_failures: webhooks given up after every attempt failed.
        webhook_attempts: webhook POSTs tried, retries included.
        faults_injected: injected faults by kind.
        requests_by_route: requests by route name (``"query"``, ``"status"``,
            ``"submit.legacy_create"``, ``"webhook.retry"``, ...), ``/_fake/`` excluded.
    """

    requests_total: int
    submit_requests: int
    accepted_tasks: int
    rejections: Mapping[str, int]
    queries: int
    queries_per_task: Mapping[str, int]
    uploads: int
    downloads: int
    file_requests_with_auth: int
    cancels: int
    max_running_per_key: Mapping[str, int]
    running: int
    queued: int
    succeeded: int
    failed: int
    cancelled: int
    webhook_deliveries: int
    webhook_failures: int
    webhook_attempts: int
    faults_injected: Mapping[str, int]
    requests_by_route: Mapping[str, int] = attrs.field(factory=dict)
