"""``python -m runninghub_async.testing --help`` explains every option; new options work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aiohttp
import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from runninghub_async.testing.__main__ import _parser, main

from ._clients import sdk_post

_ROOT = Path(__file__).resolve().parents[2]
_COMMAND = [sys.executable, "-W", "error", "-m", "runninghub_async.testing"]


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    """Every option has a help text, and --help prints them with the duration formats."""
    parser = _parser()
    for action in parser._actions:
        assert action.help, action.option_strings
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for action in parser._actions:
        assert action.option_strings[-1] in out
    for needle in ("lognormal:MEDIAN,SIGMA", "--apps-file", "/_fake/stats", "retryWebhook"):
        assert needle in out


@pytest.mark.parametrize(
    "args",
    [["--key-type", "k"], ["--key-type", "k=FREE"], ["--apps-file", "/no/such/file.json"]],
)
def test_bad_new_options_are_argparse_errors(args: list[str]) -> None:
    """A malformed --key-type or an unreadable --apps-file exits with status 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2


@pytest.mark.anyio
async def test_standalone_server_knows_the_apps_file(tmp_path: Path) -> None:
    """--apps-file adds an app the third-party CLI can run against the standalone fake."""
    apps = {"apps": {"555": [{"nodeId": "1", "fieldName": "text", "fieldValue": "x"}]}}
    path = tmp_path / "apps.json"
    path.write_text(json.dumps(apps), encoding="utf-8")
    args = ["--port", "0", "--api-key", "k1", "--apps-file", str(path), "--duration", "none"]
    process = await anyio.open_process([*_COMMAND, *args], cwd=_ROOT)
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            line = await BufferedByteReceiveStream(process.stdout).receive_until(b"\n", 200)

        class _Standalone:
            base_url = line.decode()
            api_key = "k1"

        async with aiohttp.ClientSession() as http:
            body = {
                "webappId": "555",
                "nodeInfoList": [{"nodeId": "1", "fieldName": "text", "fieldValue": "y"}],
            }
            answer = await sdk_post(http, _Standalone(), "/task/openapi/ai-app/run", body)
            assert answer["code"] == 0
            assert answer["data"]["taskStatus"] == "RUNNING"
        process.terminate()
        with anyio.fail_after(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        await process.aclose()
