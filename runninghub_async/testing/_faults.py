"""Fault injection: what can go wrong between a client and RunningHub, on demand."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import cast

import attrs

__all__ = ["FAULT_KINDS", "FAULT_ROUTES", "Fault", "FaultPlan", "fault_from_json"]

FAULT_KINDS: tuple[str, ...] = (
    "http_500",
    "http_502",
    "http_503",
    "reset",
    "slow",
    "malformed_json",
    "drop_after_accept",
)
FAULT_ROUTES: tuple[str, ...] = (
    "submit",
    "query",
    "upload",
    "download",
    "account",
    "queue_status",
    "cancel",
    "status",
    "outputs",
    "webhook",
    "api_keys",
    "price",
    "resources",
    "app_info",
    "workflow_json",
    "lora",
    "any",
)


def _check_probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


def _check_non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _check_count(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _check_times(_: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must be None or >= 0, got {value!r}")


@attrs.frozen
class Fault:
    """One rule of misbehaviour for the fake to apply to matching requests.

    Kinds:

    * ``"http_500"``, ``"http_502"``, ``"http_503"``: answer that status with an
      nginx-style HTML page before handling the request (a submit creates nothing).
    * ``"reset"``: abort the connection before handling the request (nothing created).
    * ``"slow"``: handle the request at once (a submit creates its task), then
      hold the normal answer back for ``delay`` seconds.  A client that times
      out meanwhile has still caused whatever the request does.
    * ``"malformed_json"``: handle the request normally (a submit *does* create its
      task), then answer HTTP 200, ``application/json``, with the real body cut in
      half.  On a file download the file's bytes are cut instead.
    * ``"drop_after_accept"``: submits only; create the task, then abort the
      connection without answering: the case exactly-once submission must survive.
      Its ``route`` may be ``"submit"`` or ``"any"`` (which then means submits).

    Args:
        kind: one of the kinds above.
        route: ``"submit"`` (standard-model submits and every app or workflow
            run, v2 and legacy), ``"query"``, ``"upload"`` (v2 and legacy),
            ``"download"``, ``"account"``, ``"queue_status"``, ``"cancel"``,
            ``"status"`` and ``"outputs"`` (legacy), ``"webhook"``
            (getWebhookDetail, retryWebhook), ``"api_keys"``, ``"price"``,
            ``"resources"``, ``"app_info"`` (apiCallDemo), ``"workflow_json"``,
            ``"lora"`` (getLoraUploadUrl and the PUT) or ``"any"``.
        probability: chance to inject on each eligible request (seeded RNG).
        times: stop after injecting this many times; None means forever.
        delay: seconds to sleep for ``"slow"``.
        after: let the first *after* matching requests through untouched.

    Every fault counts every request matching its route, whether or not an
    earlier fault in the list fired on it; the first eligible fault wins.
    Faults never apply to the ``/_fake/`` control routes.
    """

    # Plain str rather than Literal so that parametrized tests can pass names
    # around freely; the validators reject anything not listed above.
    kind: str = attrs.field(validator=attrs.validators.in_(FAULT_KINDS))
    route: str = attrs.field(default="any", validator=attrs.validators.in_(FAULT_ROUTES))
    probability: float = attrs.field(default=1.0, validator=_check_probability)
    times: int | None = attrs.field(default=None, validator=_check_times)
    delay: float = attrs.field(default=0.0, validator=_check_non_negative)
    after: int = attrs.field(default=0, validator=_check_count)

    def __attrs_post_init__(self) -> None:
        if self.kind == "drop_after_accept" and self.route not in ("submit", "any"):
            raise ValueError("drop_after_accept applies to submits only: use route='submit'")

    def matches(self, route: str) -> bool:
        """Whether a request on *route* (a name from ``FAULT_ROUTES``) is subject to this fault."""
        if self.kind == "drop_after_accept":
            return route == "submit"
        return self.route in ("any", route)


def fault_from_json(data: object) -> Fault:
    """Build a `Fault` from a decoded JSON object (the control API's body).

    Raises:
        ValueError: *data* is not an object, has unknown keys or bad values.
    """
    if not isinstance(data, Mapping):
        raise ValueError("a fault must be a JSON object")
    fields = {a.name for a in attrs.fields(Fault)}
    unknown = set(data) - fields
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    if "kind" not in data:
        raise ValueError("a fault needs a 'kind'")
    try:
        return Fault(**cast("dict[str, object]", dict(data)))  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(str(exc)) from exc


@attrs.define
class _Entry:
    fault: Fault
    seen: int = 0
    injected: int = 0


class FaultPlan:
    """The faults in force and their schedules (how many matched, how many fired)."""

    def __init__(self, faults: Iterable[Fault], rng: random.Random) -> None:
        self._rng = rng
        self._entries = [_Entry(f) for f in faults]

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The faults in force, in the order they are tried."""
        return tuple(e.fault for e in self._entries)

    def add(self, fault: Fault) -> None:
        """Append *fault*; it starts with fresh counters."""
        self._entries.append(_Entry(fault))

    def clear(self) -> None:
        """Remove every fault."""
        self._entries.clear()

    def pick(self, route: str) -> Fault | None:
        """The fault to inject on this request to *route*, or None."""
        chosen: Fault | None = None
        for entry in self._entries:
            fault = entry.fault
            if not fault.matches(route):
                continue
            entry.seen += 1
            if chosen is not None or entry.seen <= fault.after:
                continue
            if fault.times is not None and entry.injected >= fault.times:
                continue
            # Draw only for real coin flips, so certain faults leave the seeded
            # sequence (durations, failures) exactly as it would be without them.
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            entry.injected += 1
            chosen = fault
        return chosen
