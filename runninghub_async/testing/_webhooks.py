"""Delivering ``TASK_END`` webhooks, with retries, in the server's own task group."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
import anyio
from anyio.abc import TaskGroup

__all__ = ["DeliveryResult", "WebhookSender"]

_RESPONSE_CHARS = 1000

DeliveryResult = Callable[[bool, int, str], None]
"""Told how one delivery ended: delivered?, POSTs made, the last answer or error as text."""


class WebhookSender:
    """POSTs webhook payloads; each delivery is a task in the server's task group.

    A delivery is retried on a connection error, a timeout or a non-2xx answer,
    up to *attempts* POSTs, *retry_delay* seconds apart.  *on_attempt*,
    *on_delivered* and *on_given_up* keep the server's counters.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        task_group: TaskGroup,
        *,
        attempts: int,
        retry_delay: float,
        on_attempt: Callable[[], None],
        on_delivered: Callable[[], None],
        on_given_up: Callable[[], None],
    ) -> None:
        self._session = session
        self._task_group = task_group
        self._attempts = attempts
        self._retry_delay = retry_delay
        self._on_attempt = on_attempt
        self._on_delivered = on_delivered
        self._on_given_up = on_given_up

    def send(
        self, url: str, payload: dict[str, object], on_result: DeliveryResult | None = None
    ) -> None:
        """Start delivering *payload* to *url* in the background (owned by the task group).

        *on_result*, if given, learns how the delivery ended.
        """
        self._task_group.start_soon(self._deliver, url, payload, on_result, name=f"webhook {url}")

    async def _deliver(
        self, url: str, payload: dict[str, object], on_result: DeliveryResult | None
    ) -> None:
        answer = ""
        for attempt in range(self._attempts):
            if attempt:
                await anyio.sleep(self._retry_delay)
            self._on_attempt()
            try:
                async with self._session.post(url, json=payload) as response:
                    text = (await response.read()).decode("utf-8", "replace")
                    answer = text[:_RESPONSE_CHARS]
                    if 200 <= response.status < 300:
                        self._on_delivered()
                        if on_result is not None:
                            on_result(True, attempt + 1, answer)
                        return
                    answer = f"HTTP {response.status}: {answer}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                # A receiver that is down or slow is what the retries are for.
                answer = f"{type(exc).__name__}: {exc}"[:_RESPONSE_CHARS]
                continue
        self._on_given_up()
        if on_result is not None:
            on_result(False, self._attempts, answer)
