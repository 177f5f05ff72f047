"""Where the commands send their calls: RunningHub itself, or the embedded fake.

The real API is used when ``RUNNINGHUB_API_KEY`` is set (base URL from
``--base-url``, ``RUNNINGHUB_BASE_URL``, else https://www.runninghub.ai);
``--fake`` always starts the embedded `FakeRunningHub` instead.

The fake is a time-scaled world: jobs last about a second (real nano-banana-pro
jobs take about forty), log-normally spread, and the account may run 20 at once.
Everything the client times (its poll cadence, its request budget) is scaled by
the same factor, so the demo shows in seconds what a real batch does in minutes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Literal

import attrs

from .. import PollPolicy, RunningHub
from .._cadence import prior_for
from .._config import DEFAULT_BASE_URL
from .._journal import Journal
from .._limiter import Limiter

if TYPE_CHECKING:
    # Imported on demand only: commands on the real API never load the fake.
    from ..testing import FakeRunningHub

__all__ = [
    "FAKE_CONCURRENCY",
    "SPEEDUP",
    "ClientOptions",
    "MissingKeyError",
    "Session",
    "Target",
    "open_session",
    "resolve_target",
]

SPEEDUP = 40.0
"""How much faster than real time the fake world runs (at ``time_scale`` 1)."""

FAKE_CONCURRENCY = 20
"""Tasks the fake account may run at once; over it a submit gets errorCode 421."""

_FAKE_MEDIAN = 1.0  # seconds a fake job takes, median (at time scale 1)
_FAKE_SIGMA = 0.4
_FAKE_CAP = 5.0


class MissingKeyError(Exception):
    """No API key to call RunningHub with, and the fake was not asked for."""


@attrs.frozen(kw_only=True)
class Target:
    """Where to send calls.

    Attributes:
        fake: start the embedded fake and talk to it.
        base_url: the API's base URL (None: the library's default).
        api_key: the key (None only for the fake).
        time_scale: multiplies every duration the CLI assumes: the fake world's, and
            the client's poll cadence (tests run both fast).
    """

    fake: bool
    base_url: str | None = None
    api_key: str | None = attrs.field(default=None, repr=False)
    time_scale: float = 1.0

    @property
    def where(self) -> str:
        """A short description for messages: the host, or "the embedded fake"."""
        if self.fake:
            return "the embedded fake RunningHub"
        return self.base_url or DEFAULT_BASE_URL


def resolve_target(
    *,
    fake: bool,
    base_url: str | None,
    env: Mapping[str, str],
    time_scale: float = 1.0,
    fake_without_key: bool = False,
) -> Target:
    """Decide where calls go from the options and the environment.

    Args:
        fake: ``--fake`` was given.
        base_url: ``--base-url``, if given.
        env: the environment (``RUNNINGHUB_API_KEY``, ``RUNNINGHUB_BASE_URL``).
        time_scale: see `Target`.
        fake_without_key: use the fake when there is no key (the demo does).

    Raises:
        MissingKeyError: there is no key and the fake is not to be used.
    """
    key = env.get("RUNNINGHUB_API_KEY", "").strip()
    if fake or (not key and fake_without_key):
        return Target(fake=True, time_scale=time_scale)
    if not key:
        raise MissingKeyError(
            "no API key: set RUNNINGHUB_API_KEY (or pass --fake to use the embedded fake)"
        )
    url = base_url or env.get("RUNNINGHUB_BASE_URL") or None
    return Target(fake=False, base_url=url, api_key=key, time_scale=time_scale)


@attrs.frozen(kw_only=True)
class ClientOptions:
    """The client's knobs the commands set.

    Attributes:
        max_in_flight: jobs outstanding at once, or ``"auto"`` (the key's limit).
        requests_per_second: the request budget (None: the library default
            for the real API, scaled for the fake).
    """

    max_in_flight: int | Literal["auto"] = "auto"
    requests_per_second: float | None = None


@attrs.frozen
class Session:
    """An open client, and the fake behind it when there is one."""

    client: RunningHub
    fake: FakeRunningHub | None
    target: Target


def poll_policy(factor: float) -> PollPolicy | None:
    """The library's default cadence with every interval multiplied by *factor* (1: None)."""
    if factor == 1.0:
        return None
    default = PollPolicy()
    typical, _ = prior_for(None)
    return PollPolicy(
        target_delay=default.target_delay * factor,
        typical_duration=typical * factor,
        min_interval=default.min_interval * factor,
        max_interval=default.max_interval * factor,
        # Not scaled down as far: it guards against a lagging API, not a slow job.
        not_found_grace=max(1.0, default.not_found_grace * factor),
    )


@asynccontextmanager
async def open_session(
    target: Target,
    options: ClientOptions,
    *,
    journal: Journal | None = None,
    limiter: Limiter | None = None,
) -> AsyncIterator[Session]:
    """Open a client on *target* (starting the fake first if asked), and close both after.

    *journal* and *limiter* are given to the client (a batch's journal; a limiter
    shared with other workers).

    Raises:
        RunningHubError: the client could not open (``max_in_flight="auto"`` queries the API).
    """
    if not target.fake:
        client = RunningHub(
            api_key=target.api_key,
            base_url=target.base_url,
            max_in_flight=options.max_in_flight,
            requests_per_second=options.requests_per_second or 10.0,
            poll=poll_policy(target.time_scale),
            journal=journal,
            limiter=limiter,
        )
        async with client:
            yield Session(client, None, target)
        return

    from ..testing import FakeRunningHub, lognormal

    scale = target.time_scale
    fake = FakeRunningHub(
        duration=lognormal(_FAKE_MEDIAN * scale, _FAKE_SIGMA, cap=_FAKE_CAP * scale),
        concurrency_limit=FAKE_CONCURRENCY,
    )
    async with fake:
        client = RunningHub(
            api_key=fake.api_key,
            base_url=fake.base_url,
            max_in_flight=options.max_in_flight,
            # The real default budget (10 per second), sped up like everything else.
            requests_per_second=options.requests_per_second or 10.0 * SPEEDUP / scale,
            poll=poll_policy(scale / SPEEDUP),
            job_timeout=300.0,
            journal=journal,
            limiter=limiter,
        )
        async with client:
            yield Session(client, fake, target)
