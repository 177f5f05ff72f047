"""Configuration: frozen, validated value objects, and the one place that reads the environment.

Every number here is checked when the object is built (type, finiteness, range),
so a typo fails at construction with the argument's name, never later inside a
background task.  `build_config` is the only code that reads ``RUNNINGHUB_*``
environment variables; the command line uses it too.
"""

from __future__ import annotations

import math
import os
import random
import string
from collections.abc import Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import attrs

from ._errors import AuthenticationError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_JOB_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_REQUESTS_PER_SECOND",
    "ClientConfig",
    "PollPolicy",
    "RetryPolicy",
    "Timeouts",
    "build_config",
    "check_api_key",
    "check_base_url",
]

DEFAULT_BASE_URL: Final = "https://www.runninghub.ai"
DEFAULT_MAX_IN_FLIGHT: Final = 4
DEFAULT_REQUESTS_PER_SECOND: Final = 10.0
DEFAULT_JOB_TIMEOUT: Final = 1800.0
DEFAULT_MAX_CONNECTIONS: Final = 32
MIB: Final = 1024 * 1024
# API answers are JSON read whole into memory, and the bound reaches zlib's
# ``max_length`` (a C ssize_t): a GiB is far above any real answer and far below
# what overflows it.
MAX_RESPONSE_BYTES_LIMIT: Final = 1024 * MIB
_DOWNLOAD_TOTAL: float | None = 900.0
_DOWNLOAD_MIN_RATE: float | None = 16 * 1024.0
# Far above any image or video a model makes; far below what a compression
# bomb or an endless stream would fill a disk with.
_MAX_DOWNLOAD_BYTES: int | None = 2048 * MIB


def _real(name: str, value: object) -> float:
    """*value* as a finite float, or TypeError/ValueError naming *name*."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _whole(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not _real(attribute.name, value) > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not _real(attribute.name, value) >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 <= _real(attribute.name, value) < 1:
        raise ValueError(f"{attribute.name} must be in [0, 1), got {value!r}")


def _optional_positive(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not _real(attribute.name, value) > 0:
        raise ValueError(f"{attribute.name} must be > 0 or None, got {value!r}")


def _optional_non_negative(
    _: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not _real(attribute.name, value) >= 0:
        raise ValueError(f"{attribute.name} must be >= 0 or None, got {value!r}")


def _at_least_one(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    _whole(attribute.name, value, 1)


def _optional_at_least_one(
    _: object, attribute: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None:
        _whole(attribute.name, value, 1)


def _response_cap(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if _whole(attribute.name, value, 1) > MAX_RESPONSE_BYTES_LIMIT:
        raise ValueError(
            f"{attribute.name} must be at most {MAX_RESPONSE_BYTES_LIMIT} (1 GiB), got {value!r}"
        )


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How the shared poller spends its queries.

    The poller learns how long jobs of each endpoint take (counting jobs still
    running, so early fast finishers do not bias it), starting from a typical
    duration per kind of model.  A job's first check comes late enough that only
    a few jobs of its kind will have ended long before it; then it is checked
    every ``~2 * target_delay`` while it runs, with no back-off until far past the
    learned tail.  ``target_delay`` is the trade: the median delay between a job
    ending and its waiter hearing of it is about ``target_delay`` (the p95 about
    twice that), and queries near the typical end scale as ``1 / target_delay``.
    (A 5 s fixed loop has a median delay of 2.5 s.)

    Args:
        target_delay: the median detection delay aimed for, in seconds.
        typical_duration: how long jobs typically take, in seconds, before any
            has been seen (None: a guess per kind of model: image, video, ...).
        initial_delay: the latest the first check of a job may come, in seconds
            (None: where the learned durations put it).
        min_interval: shortest time between two checks of one job.
        max_interval: longest time between two checks of one job (also the
            cadence of jobs nobody waits for, and of jobs whose webhook is expected).
        jitter: random change of every interval, either way, as a fraction of it.
        max_concurrent: queries in flight at once.
        max_rate: the poller's own budget in queries per second, inside the
            client's ``requests_per_second``: no one-second window sees more
            (for ``max_rate >= 2``).  None uses only the client's budget.
        not_found_grace: seconds after submit during which "task not found"
            (1004) is taken as RunningHub not having caught up yet.
        history: jobs remembered per endpoint to learn its durations.
        check_timeout: seconds one status check may take before it counts as
            failed and is retried later, so a server that stalls some answers
            never holds up the checks of other jobs.
    """

    target_delay: float = attrs.field(default=2.4, validator=_positive)
    typical_duration: float | None = attrs.field(default=None, validator=_optional_positive)
    initial_delay: float | None = attrs.field(default=None, validator=_optional_non_negative)
    min_interval: float = attrs.field(default=1.0, validator=_positive)
    max_interval: float = attrs.field(default=30.0, validator=_positive)
    jitter: float = attrs.field(default=0.05, validator=_fraction)
    max_concurrent: int = attrs.field(default=16, validator=_at_least_one)
    max_rate: float | None = attrs.field(default=None, validator=_optional_positive)
    not_found_grace: float = attrs.field(default=15.0, validator=_non_negative)
    history: int = attrs.field(default=256, validator=_at_least_one)
    check_timeout: float = attrs.field(default=15.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.max_interval < self.min_interval:
            raise ValueError("max_interval must be >= min_interval")

    def spread(self, interval: float, rng: random.Random) -> float:
        """*interval* moved by up to ``jitter`` of it either way, clamped to the interval bounds.

        Symmetric, so the checks of jobs started together drift apart at no cost
        in queries (a one-sided shortening spends ``jitter / 2`` more on average);
        the detection delay's p95 moves by a fraction of a percent.
        """
        jittered = interval * (1 + self.jitter * (2 * rng.random() - 1))
        return min(self.max_interval, max(self.min_interval, jittered))


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Backoff for calls that are safe to repeat (queries, account, uploads).

    Waits grow as ``initial * 2**n``, capped at ``maximum``, with full jitter on
    the top half, for at most ``attempts`` tries in all.
    """

    attempts: int = attrs.field(default=4, validator=_at_least_one)
    initial: float = attrs.field(default=0.25, validator=_positive)
    maximum: float = attrs.field(default=8.0, validator=_positive)

    def wait(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number *retry* (0-based)."""
        ceiling = min(self.maximum, self.initial * 2.0**retry)
        return ceiling / 2 + rng.random() * ceiling / 2


@attrs.frozen(kw_only=True)
class Timeouts:
    """Network bounds, in seconds (sizes in bytes).

    ``connect`` and ``read`` bound inactivity; ``total`` bounds a whole API
    exchange (connect, send, and the entire answer), so a server dripping one
    byte a second cannot hold a call, a status check or a close for longer.
    Downloads have their own total bound and a minimum average rate.

    Composite operations (``wait``, ``run``) are bounded by ``job_timeout``.

    Args:
        connect: seconds to open a connection.
        read: seconds without a byte from the server.  An API call with a JSON
            body sends and gets little, so it must end within ``read`` seconds
            (and ``total``); uploads and downloads get ``read`` as an inactivity bound.
        total: seconds for a whole API request and its answer.
        max_response_bytes: the largest API answer read (decompressed); more is
            a `ProtocolError`.  At most 1 GiB.
        download_total: seconds a single file download may take (None: unbounded).
        download_min_rate: bytes per second a download must average after its
            first ``read`` seconds, else it fails (None: no minimum).
        max_download_bytes: the largest result file ``download``, ``read`` and
            ``stream`` take, counted after decompression (2 GiB; None: unbounded);
            more is a `ProtocolError` and nothing is kept.
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    read: float = attrs.field(default=60.0, validator=_positive)
    total: float = attrs.field(default=120.0, validator=_positive)
    max_response_bytes: int = attrs.field(default=4 * MIB, validator=_response_cap)
    download_total: float | None = attrs.field(
        default=_DOWNLOAD_TOTAL, validator=_optional_positive
    )
    download_min_rate: float | None = attrs.field(
        default=_DOWNLOAD_MIN_RATE, validator=_optional_positive
    )
    max_download_bytes: int | None = attrs.field(
        default=_MAX_DOWNLOAD_BYTES, validator=_optional_at_least_one
    )


_KEY_CHARS = frozenset(string.ascii_letters + string.digits + string.punctuation)


def check_api_key(key: object) -> str:
    """*key* if it can be a RunningHub API key, else an error that never shows it.

    Raises:
        AuthenticationError: *key* is empty.
        TypeError: *key* is not a str.
        ValueError: *key* holds whitespace, control or non-ASCII characters (a
            pasted newline, say), which no key has and no header can carry.
    """
    if not isinstance(key, str):
        raise TypeError(f"api_key must be a str, got {type(key).__name__}")
    if not key:
        raise AuthenticationError("local", "no API key: pass api_key= or set RUNNINGHUB_API_KEY")
    if not set(key) <= _KEY_CHARS:
        raise ValueError(
            "api_key holds whitespace, control or non-ASCII characters "
            "(check for a trailing newline); it is not shown here"
        )
    return key


def check_base_url(url: object, *, name: str = "base_url", query: bool = False) -> str:
    """*url* without a trailing slash, if it is an absolute http(s) URL of a host.

    Raises:
        TypeError: *url* is not a str.
        ValueError: no http(s) scheme, no host, a bad port, credentials, a query,
            a fragment, or whitespace/control characters.  *query* allows a query.
    """
    if not isinstance(url, str):
        raise TypeError(f"{name} must be a str, got {type(url).__name__}")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValueError(f"{name} holds whitespace or control characters: {url!r}")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{name} has an invalid port: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an absolute http(s) URL with a host, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{name} must not carry credentials")
    if (parts.query and not query) or parts.fragment or url.endswith("#"):
        raise ValueError(f"{name} must not have a query or fragment, got {url!r}")
    if port == 0:
        raise ValueError(f"{name} has an invalid port: {url!r}")
    return url if query else url.rstrip("/")


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Everything a client is built from, validated once.  See `RunningHub` for meanings."""

    api_key: str = attrs.field(repr=False)
    base_url: str
    max_in_flight: int
    auto_limit: bool
    requests_per_second: float | None
    job_timeout: float
    poll: PollPolicy
    retry: RetryPolicy
    timeouts: Timeouts
    max_connections: int
    validate: bool
    seed: int | None
    webhook_url: str | None


def _typed(name: str, value: Any, cls: type[Any]) -> Any:
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
    return value


def build_config(
    *,
    api_key: str | None,
    base_url: str | None,
    max_in_flight: int | Literal["auto"],
    requests_per_second: float | None,
    job_timeout: float,
    poll: PollPolicy | None,
    retry: RetryPolicy | None,
    timeouts: Timeouts | None,
    max_connections: int,
    validate: bool,
    seed: int | None,
    webhook_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClientConfig:
    """A `ClientConfig` from constructor arguments, with the environment filling gaps.

    Raises:
        AuthenticationError: no key was given or found in the environment.
        TypeError, ValueError: an argument has the wrong type or value (named).
    """
    env = os.environ if environ is None else environ
    key = check_api_key(api_key if api_key is not None else env.get("RUNNINGHUB_API_KEY", ""))
    url = check_base_url(
        base_url if base_url is not None else env.get("RUNNINGHUB_BASE_URL") or DEFAULT_BASE_URL
    )
    auto = max_in_flight == "auto"
    slots = 1 if auto else _whole("max_in_flight", max_in_flight, 1)
    rps = None if requests_per_second is None else _real("requests_per_second", requests_per_second)
    if rps is not None and rps <= 0:
        raise ValueError(f"requests_per_second must be > 0 or None, got {requests_per_second!r}")
    if _real("job_timeout", job_timeout) <= 0:
        raise ValueError(f"job_timeout must be > 0, got {job_timeout!r}")
    hook = (
        None if webhook_url is None else check_base_url(webhook_url, name="webhook_url", query=True)
    )
    if seed is not None:
        _whole("seed", seed, -(2**63))
    return ClientConfig(
        api_key=key,
        base_url=url,
        max_in_flight=slots,
        auto_limit=auto,
        requests_per_second=rps,
        job_timeout=float(job_timeout),
        poll=_typed("poll", poll, PollPolicy) if poll is not None else PollPolicy(),
        retry=_typed("retry", retry, RetryPolicy) if retry is not None else RetryPolicy(),
        timeouts=_typed("timeouts", timeouts, Timeouts) if timeouts is not None else Timeouts(),
        max_connections=_whole("max_connections", max_connections, 1),
        validate=_typed("validate", validate, bool),
        seed=seed,
        webhook_url=hook,
    )
