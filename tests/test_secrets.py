"""The API key never leaves through logs, reprs, errors or file requests."""

from __future__ import annotations

import logging

import pytest

from runninghub_async import RunningHub, TaskNotFoundError
from runninghub_async.testing import FakeRunningHub

from .conftest import FAST_POLL, FAST_RETRY

pytestmark = pytest.mark.anyio

SECRET = "sk-very-secret-key-0123456789"


async def test_key_is_not_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    """A whole run at DEBUG, plus reprs and error messages, never show the key."""
    caplog.set_level(logging.DEBUG, logger="runninghub_async")
    async with FakeRunningHub(api_keys=(SECRET,), duration=0.01) as fake:
        client = RunningHub(
            api_key=SECRET, base_url=fake.base_url, poll=FAST_POLL, retry=FAST_RETRY
        )
        async with client:
            job = await client.submit(
                "rhart-image-n-pro/text-to-image", {"prompt": "x", "resolution": "1k"}
            )
            result = await job.wait()
            texts = [repr(client), repr(job), repr(result), str(client.statistics())]
            with pytest.raises(TaskNotFoundError) as caught:
                await client.query("1111111111111111111")
            texts.append(str(caught.value))
        assert fake.stats.file_requests_with_auth == 0
    texts.extend(record.getMessage() for record in caplog.records)
    assert caplog.records, "expected some debug logging"
    for text in texts:
        assert SECRET not in text
