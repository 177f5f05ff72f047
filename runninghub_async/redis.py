"""Sharing one API key across processes and machines, through Redis (extra ``redis``).

A RunningHub key's concurrency limit and request budget belong to the account:
two processes that each think they own them get 421s.  `RedisLimiter` shares
them through Redis (or Valkey); `RedisJournal` keeps the submit journal there,
so another worker (or the same one, restarted) can take over paid tasks::

    from runninghub_async import RunningHub
    from runninghub_async.redis import RedisJournal, RedisLimiter

    limiter = RedisLimiter.from_url(
        "redis://localhost:6379/0", api_key=key, max_in_flight=10, requests_per_second=20
    )
    journal = RedisJournal.from_url("redis://localhost:6379/0", namespace="my-app")
    async with RunningHub(api_key=key, limiter=limiter, journal=journal) as client:
        ...

Needs ``redis>=5.0.1`` (``pip install "runninghub-async[redis]"``); Redis 5+
or Valkey.  Each class's docstring states what happens when Redis restarts
empty, becomes unreachable, or a process pauses past its lease.
"""

from __future__ import annotations

from ._errors import CoordinationUnavailableError, JournalOwnershipError
from ._redis_journal import RedisJournal
from ._redis_limiter import RedisLimiter, RedisSlot

__all__ = [
    "CoordinationUnavailableError",
    "JournalOwnershipError",
    "RedisJournal",
    "RedisLimiter",
    "RedisSlot",
]
