"""How long a fake task waits: fixed, uniform range, callable, or never.

A *duration spec* is one of:

* a number of seconds (``2.0``);
* a ``(min, max)`` pair, drawn uniformly from the server's seeded RNG;
* a callable ``(FakeTask) -> float | None`` (``lognormal(...)`` builds one);
  returning None means "never";
* None: the phase never ends by itself (only ``finish()``/``fail()`` end the task).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import TypeAlias

from ._models import FakeTask

__all__ = ["DurationSpec", "check_duration", "draw", "lognormal"]

DurationSpec: TypeAlias = float | tuple[float, float] | Callable[[FakeTask], float | None] | None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_duration(spec: object, name: str) -> DurationSpec:
    """Return *spec* if it is a valid duration spec, else raise ValueError naming *name*."""
    if spec is None or callable(spec):
        return spec
    if _is_number(spec):
        if spec < 0:  # type: ignore[operator]
            raise ValueError(f"{name} must be >= 0 seconds, got {spec!r}")
        return float(spec)  # type: ignore[arg-type]
    if isinstance(spec, tuple) and len(spec) == 2 and all(_is_number(v) for v in spec):
        low, high = float(spec[0]), float(spec[1])
        if not 0 <= low <= high:
            raise ValueError(f"{name} range must satisfy 0 <= min <= max, got {spec!r}")
        return (low, high)
    raise ValueError(f"{name} must be seconds, a (min, max) pair, a callable or None, got {spec!r}")


def draw(spec: DurationSpec, task: FakeTask, rng: random.Random) -> float | None:
    """Seconds for one task under *spec*; None means the phase never ends by itself."""
    if spec is None:
        return None
    if isinstance(spec, float | int):
        return float(spec)
    if isinstance(spec, tuple):
        low, high = spec
        return low if low == high else rng.uniform(low, high)
    value = spec(task)
    if value is None:
        return None
    seconds = float(value)
    if math.isnan(seconds):
        raise ValueError(f"duration callable returned NaN for task {task.task_id}")
    return max(seconds, 0.0)


def lognormal(
    median: float,
    sigma: float,
    cap: float | None = None,
    floor: float = 0.0,
    *,
    rng: random.Random | None = None,
) -> Callable[[FakeTask], float]:
    """A duration callable drawing log-normally distributed seconds.

    Real generation times are skewed: most jobs take about the median, a few take
    much longer.  ``lognormal(40, 0.4, cap=180)`` models a nano-banana-pro job.

    Args:
        median: the median duration in seconds (> 0).
        sigma: the standard deviation of the log of the duration (>= 0).
        cap: the longest duration returned, or None for no cap.
        floor: the shortest duration returned.
        rng: where to draw from.  Without it each task gets its own
            ``random.Random`` seeded from its task id and these parameters, so a
            seeded server (whose task ids are deterministic) gives the same
            durations on every run whatever order tasks are submitted in.

    Returns:
        A callable ``(FakeTask) -> float`` to pass as ``duration=`` or ``queue_time=``.

    Raises:
        ValueError: a parameter is out of range.
    """
    if not median > 0:
        raise ValueError(f"median must be > 0, got {median!r}")
    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    if floor < 0 or (cap is not None and cap < floor):
        raise ValueError(f"need 0 <= floor <= cap, got floor={floor!r} cap={cap!r}")
    mu = math.log(median)
    salt = f"lognormal:{median!r}:{sigma!r}:{cap!r}:{floor!r}"

    def duration(task: FakeTask) -> float:
        source = rng if rng is not None else random.Random(f"{salt}:{task.task_id}")
        value = max(source.lognormvariate(mu, sigma), floor)
        return value if cap is None else min(value, cap)

    return duration
