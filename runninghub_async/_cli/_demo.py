"""The ``demo`` command: many images on the embedded fake, with live progress and a summary.

The fake account may run 20 tasks at once while the client is allowed 24, so
some submits are refused with errorCode 421: the client absorbs each one, shrinks
its window and finds the account's limit by itself, which the summary shows.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import anyio.lowlevel
import attrs

from .. import _catalog
from ._backend import FAKE_CONCURRENCY, SPEEDUP, ClientOptions, Target, open_session
from ._engine import Engine
from ._inputs import Item, RequestBuilder
from ._progress import Tracker, make_display, rich_console, show_while
from ._stop import Interrupted, Stop
from ._summary import print_summary, summarize

__all__ = ["DEMO_IN_FLIGHT", "DemoRequest", "demo_prompt", "run_demo"]

DEMO_IN_FLIGHT = FAKE_CONCURRENCY + 4
"""The client's ``max_in_flight`` in the demo: above the fake account's limit on purpose."""

_SUBJECTS = (
    "a lighthouse on a basalt cliff",
    "a red fox in fresh snow",
    "a tram crossing a rainy square",
    "a bowl of ramen, top view",
    "an astronaut tending a greenhouse",
    "a paper boat on a puddle",
    "a koi pond under cherry blossoms",
    "a desert observatory at dusk",
)
_STYLES = ("watercolour", "35mm film photo", "isometric pixel art", "ink sketch", "oil painting")
_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4")


def demo_prompt(n: int) -> dict[str, str]:
    """The params of demo image *n* (varied, deterministic)."""
    subject = _SUBJECTS[n % len(_SUBJECTS)]
    style = _STYLES[(n // len(_SUBJECTS)) % len(_STYLES)]
    return {"prompt": f"{subject}, {style}", "aspectRatio": _RATIOS[n % len(_RATIOS)]}


@attrs.frozen(kw_only=True)
class DemoRequest:
    """What ``demo`` was asked for."""

    count: int
    output: str


async def _items(count: int) -> AsyncGenerator[Item, None]:
    builder = RequestBuilder(model=_catalog.DEFAULT_MODEL)
    for n in range(count):
        yield builder.item(n, n + 1, demo_prompt(n))
        await anyio.lowlevel.checkpoint()


async def run_demo(target: Target, request: DemoRequest, stop: Stop) -> int:
    """Generate ``count`` images, download them, show progress and a summary.

    Raises:
        Interrupted: the user stopped it.
        RunningHubError, OSError: the run could not start.
    """
    console = rich_console()
    options = ClientOptions(max_in_flight=DEMO_IN_FLIGHT if target.fake else "auto")
    endpoint = _catalog.MODELS[_catalog.DEFAULT_MODEL][0]
    print(f"demo: {request.count} images through {endpoint} on {target.where}")
    if target.fake:
        scale = target.time_scale
        print(
            f"  the fake runs {SPEEDUP / scale:g}x faster than real time: jobs take about "
            f"{scale:g} s (log-normal, at most {5 * scale:g} s), and the account runs at "
            f"most {FAKE_CONCURRENCY} at once"
        )
        print(
            f"  the client may have {DEMO_IN_FLIGHT} jobs in flight, more than the account "
            "allows, and is not told the limit"
        )
    print(f"  files go to {request.output}", flush=True)
    async with open_session(target, options) as session:
        client = session.client
        tracker = Tracker(request.count)
        display = make_display(tracker, label="demo", console=console)
        engine = Engine(
            client,
            None,
            tracker,
            request.output,
            window=client.statistics().limiter.max_in_flight,
            stop=stop,
            note=display.note,
        )
        await show_while(display, lambda: engine.run(_items(request.count)))
        wall = tracker.elapsed()
        stats = client.statistics()
        refused = session.fake.stats.rejections.get("421", 0) if session.fake else None
    summary = summarize(engine=engine, tracker=tracker, stats=stats, wall=wall)
    print_summary(summary, title="summary", console=console)
    if refused:
        print(
            f"The fake refused {refused} submits over the account's limit of "
            f"{FAKE_CONCURRENCY} (errorCode 421); the client absorbed every one and "
            "found the account's limit by itself."
        )
    for failure in engine.ledger.failures[:5]:
        print(f"failed: image {failure.item.index}: {failure.error_type}: {failure.message}")
    if stop.requested.is_set():
        raise Interrupted("interrupted", status=stop.exit_status)
    return 1 if engine.ledger.failures else 0
