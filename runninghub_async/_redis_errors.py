"""The exceptions of the Redis-backed limiter and journal (to join ``_errors.py``).

::

    RunningHubError
    ├── CoordinationUnavailableError   Redis could not be reached for longer than allowed
    └── JournalOwnershipError          another worker owns this journal key now
"""

from __future__ import annotations

from ._errors import RunningHubError

__all__ = ["CoordinationUnavailableError", "JournalOwnershipError"]


class CoordinationUnavailableError(RunningHubError, ConnectionError):
    """The shared store (Redis) could not be reached for longer than allowed.

    Raised by ``RedisLimiter.acquire_slot`` when no slot could be agreed on within
    the limiter's ``unavailable_timeout``, and by ``RedisJournal`` methods when a
    record could not be written or read within the journal's bound: nothing was
    submitted on the strength of it.
    """


class JournalOwnershipError(RunningHubError):
    """Another worker owns this journal key now: this one must not submit it.

    Raised by ``RedisJournal.intent`` when the key was claimed by another writer
    since this one last claimed it (a worker thought dead that woke up), so its
    POST would pay a second time for work someone else has taken over.

    Attributes:
        key: the caller key.
        owner: the writer that owns it now.
        epoch: the key's current ownership epoch.
    """

    def __init__(self, key: str, owner: str, epoch: int) -> None:
        super().__init__(f"journal key {key!r} is owned by {owner!r} now (epoch {epoch})")
        self.key = key
        self.owner = owner
        self.epoch = epoch
