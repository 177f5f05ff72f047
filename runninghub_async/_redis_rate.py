"""The request rate shared by every process on one key: GCRA on the Redis server's clock.

Part of ``RedisLimiter``: a Lua script computes, on the Redis server's clock
(never the clients'), when each call may go, so no one-second window across all
processes sees the configured rate or more.  A throttle (1003/429) halves the
shared rate and pauses everyone; it recovers over time.  When Redis cannot be
reached, calls are paced locally at the rate divided by the processes last seen.
"""

from __future__ import annotations

import logging
import math

import anyio
import redis.asyncio
import redis.exceptions

from . import _redis_lua as lua

__all__ = ["RedisRate", "strict_rate"]

log = logging.getLogger("runninghub_async")

_MIN_FACTOR = 1 / 16  # the shared rate never throttles below a sixteenth
_RECOVERY = 0.1  # then recovers by a tenth of the rate per second


def strict_rate(rate: float) -> tuple[float, float]:
    """(refill rate, burst) such that no 1 s window sees *rate* calls or more.

    GCRA passes fewer than ``w * r + b`` calls in any window of w seconds, so
    ``r = rate - b`` keeps one second under *rate*; a burst of a twentieth of a
    second absorbs sleeps that overshoot (the poller's budget does the same).
    """
    burst = max(1.0, rate / 20)
    return max(rate - burst, rate / 2), burst


class RedisRate:
    """One key's request budget, shared through Redis, with a local fallback."""

    def __init__(self, client: redis.asyncio.Redis, namespace: str, rate: float | None) -> None:
        self.rate = rate
        self._keys = [namespace + "tat", namespace + "throttle"]
        self._rate_script = client.register_script(lua.RATE)
        self._throttle_script = client.register_script(lua.THROTTLE)
        self._throttles: list[float] = []
        self._down_until = -math.inf
        self._local_next = -math.inf
        self._paused_until = -math.inf
        self.waiting = 0

    @property
    def throttles_pending(self) -> bool:
        """Whether throttles wait to be told to Redis."""
        return bool(self._throttles)

    async def acquire(self, members: int) -> None:
        """Wait for one call of the shared budget (*members*: processes last seen)."""
        if self.rate is None:
            return
        self.waiting += 1
        try:
            now = anyio.current_time()
            if self._paused_until > now:
                await anyio.sleep(self._paused_until - now)
            if anyio.current_time() >= self._down_until:
                refill, burst = strict_rate(self.rate)
                try:
                    wait = await self._rate_script(
                        keys=self._keys, args=[1 / refill, burst, _RECOVERY]
                    )
                except redis.exceptions.RedisError as error:
                    if self._down_until == -math.inf:
                        log.warning("Redis is unreachable (%s): pacing requests locally", error)
                    self._down_until = anyio.current_time() + 1.0
                else:
                    if self._down_until != -math.inf:
                        self._down_until = -math.inf
                    delay = float(wait)
                    if delay > 0:
                        await anyio.sleep(delay)
                    return
            await self._local_pace(members)
        finally:
            self.waiting -= 1

    async def _local_pace(self, members: int) -> None:
        assert self.rate is not None
        refill, _ = strict_rate(self.rate / max(1, members))
        now = anyio.current_time()
        at = max(now, self._local_next)
        self._local_next = at + 1 / refill
        if at > now:
            await anyio.sleep(at - now)

    def throttled(self, retry_after: float | None) -> None:
        """Pause this process's calls now; the shared halving is pushed by `push_throttles`."""
        pause = max(0.0, retry_after or 0.0)
        self._paused_until = max(self._paused_until, anyio.current_time() + pause)
        self._throttles.append(pause)

    async def push_throttles(self) -> None:
        """Tell Redis of the throttles seen since last time (the limiter's worker calls it)."""
        if not self._throttles:
            return
        pause = max(self._throttles)
        await self._throttle_script(keys=self._keys, args=[pause, _MIN_FACTOR, _RECOVERY])
        self._throttles.clear()
