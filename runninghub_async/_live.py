"""What exists only while a client is open: its sessions, API, poller, submitter, tasks."""

from __future__ import annotations

import anyio.abc
import attrs

from ._api import Api
from ._journaling import JournalWriter
from ._poller import Poller
from ._submit import Submitter
from ._transport import Transport

__all__ = ["Live"]


@attrs.define
class Live:
    """The collaborators a client builds on entry and drops on exit."""

    transport: Transport
    api: Api
    poller: Poller
    submitter: Submitter
    tg: anyio.abc.TaskGroup
    writer: JournalWriter
