"""Configuration value objects: frozen, keyword-only, validated when built."""

from __future__ import annotations

import random

import attrs

__all__ = ["PollPolicy", "RetryPolicy", "Timeouts"]


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


def _optional_positive(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 or None, got {value!r}")


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How the shared poller spends its queries.

    The first check of a job comes near the earliest time jobs of the same
    endpoint have been seen to finish (``initial_delay`` until a few have).  Around
    the typical duration checks come every ``interval_fraction`` of it; past that
    the interval grows by ``backoff`` per check, up to ``max_interval``.

    Args:
        initial_delay: seconds to the first check while nothing is known of the endpoint.
        min_interval: shortest time between two checks of one job.
        max_interval: longest time between two checks of one job.
        interval_fraction: interval near the typical duration, as a fraction of it.
        backoff: growth of the interval per check once a job runs longer than usual.
        jitter: random spread of every interval, as a fraction of it.
        max_concurrent: queries in flight at once.
        max_rate: the poller's own budget in queries per second, inside the
            client's ``requests_per_second``: no one-second window sees more
            (for ``max_rate >= 2``).  None uses only the client's budget.
        not_found_grace: seconds after submit during which "task not found"
            (1004) is taken as RunningHub not having caught up yet.
        history: finished jobs remembered per endpoint to learn its durations.
    """

    initial_delay: float = attrs.field(default=3.0, validator=_non_negative)
    min_interval: float = attrs.field(default=1.0, validator=_positive)
    max_interval: float = attrs.field(default=30.0, validator=_positive)
    interval_fraction: float = attrs.field(default=0.125, validator=_positive)
    backoff: float = attrs.field(default=1.5)
    jitter: float = attrs.field(default=0.1, validator=_fraction)
    max_concurrent: int = attrs.field(default=16)
    max_rate: float | None = attrs.field(default=None, validator=_optional_positive)
    not_found_grace: float = attrs.field(default=15.0, validator=_non_negative)
    history: int = attrs.field(default=64)

    def __attrs_post_init__(self) -> None:
        if self.max_interval < self.min_interval:
            raise ValueError("max_interval must be >= min_interval")
        if self.backoff < 1:
            raise ValueError(f"backoff must be >= 1, got {self.backoff!r}")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {self.max_concurrent!r}")
        if self.history < 1:
            raise ValueError(f"history must be >= 1, got {self.history!r}")

    def spread(self, interval: float, rng: random.Random) -> float:
        """*interval* with this policy's jitter applied."""
        return interval * (1 + self.jitter * (2 * rng.random() - 1))


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Backoff for calls that are safe to repeat (queries, account, uploads).

    Waits grow as ``initial * 2**n``, capped at ``maximum``, with full jitter on
    the top half, for at most ``attempts`` tries in all.
    """

    attempts: int = attrs.field(default=4)
    initial: float = attrs.field(default=0.25, validator=_positive)
    maximum: float = attrs.field(default=8.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts!r}")

    def wait(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number *retry* (0-based)."""
        ceiling = min(self.maximum, self.initial * 2.0**retry)
        return ceiling / 2 + rng.random() * ceiling / 2


@attrs.frozen(kw_only=True)
class Timeouts:
    """Per-request network timeouts, in seconds.

    Composite operations (``wait``, ``run``, ``download``) take no timeout: wrap
    them in ``anyio.fail_after`` or rely on ``job_timeout``.
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    read: float = attrs.field(default=60.0, validator=_positive)
