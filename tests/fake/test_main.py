"""``python -m runninghub_async.testing``: prints its URL, serves, exits 0 on a signal."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import aiohttp
import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from ._support import GOOD, bearer, post_json

pytestmark = pytest.mark.anyio

_ROOT = Path(__file__).resolve().parents[2]
_COMMAND = [sys.executable, "-W", "error", "-m", "runninghub_async.testing"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
async def test_standalone_server_serves_and_exits_cleanly(stop: signal.Signals) -> None:
    """With --port 0 it prints one base URL, answers a submit and a query, exits 0 on a signal."""
    args = ["--port", "0", "--api-key", "k1", "--api-key", "k2", "--duration", "0", "--seed", "1"]
    process = await anyio.open_process([*_COMMAND, *args], cwd=_ROOT)
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 200)
        base_url = line.decode()
        assert base_url.startswith("http://127.0.0.1:")
        assert not base_url.endswith(":0")
        async with aiohttp.ClientSession() as http:
            url = f"{base_url}/openapi/v2/rhart-image-n-pro/text-to-image"
            answer = await post_json(http, url, GOOD, bearer("k2"))
            assert answer["status"] == "RUNNING"
            url = f"{base_url}/openapi/v2/query"
            queried = await post_json(http, url, {"taskId": answer["taskId"]}, bearer("k2"))
            assert queried["taskId"] == answer["taskId"]
        process.send_signal(stop)
        with anyio.fail_after(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()


@pytest.mark.parametrize(
    "args",
    [["--duration", "soon"], ["--duration", "3,1"], ["--port", "x"], ["--failure-rate", "2"]],
)
async def test_standalone_server_rejects_bad_arguments(args: list[str]) -> None:
    """Bad arguments end with an argparse error (exit status 2) naming the problem."""
    result = await anyio.run_process([*_COMMAND, *args], cwd=_ROOT, check=False)
    assert result.returncode == 2
    assert b"error:" in result.stderr
    assert result.stdout == b""


def test_duration_forms_parse() -> None:
    """--duration takes seconds, MIN,MAX, lognormal:MEDIAN,SIGMA[,CAP] and none."""
    from runninghub_async.testing.__main__ import _duration

    assert _duration("2") == 2.0
    assert _duration("0.5,3") == (0.5, 3.0)
    assert _duration("none") is None
    assert callable(_duration("lognormal:2,0.4,10"))
    with pytest.raises(argparse.ArgumentTypeError, match="bad duration"):
        _duration("lognormal:2")
