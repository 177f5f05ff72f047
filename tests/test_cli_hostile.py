"""The command line against hostile input and hostile timing: batch files with monstrous lines,
parameters nested past any bound, an output directory that cannot be written, a server that
echoes the key back in upper case, and Ctrl-C while the program loads or after it has finished.

Each ends in one ``error:`` line (or ``interrupted``) and a meaningful exit status, before any
money is spent, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.from_thread
import pytest
from aiohttp import web

from runninghub_async._cli import main
from runninghub_async._cli._batch import FAILURES_NAME
from runninghub_async._cli._inputs import MAX_LINE_CHARS, LineTooLongError, count_items

from .hostile import serve as serve_routes
from .test_cli import T2I, Server, pngs, run, write_lines
from .test_cli import serve as serve  # a fixture (server uses it)
from .test_cli import server as server  # a fixture

# -- batch files -------------------------------------------------------------------------------


def test_a_line_over_the_bound_refuses_the_file_before_any_request(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line longer than MAX_LINE_CHARS (a binary, /dev/zero): one error line naming it, exit 1."""
    source = tmp_path / "prompts.txt"
    source.write_text("a fox\n\na cat\n" + "x" * (MAX_LINE_CHARS + 1) + "\na dog\n", "utf-8")
    assert run(server, "batch", str(source), "-o", str(tmp_path / "out")) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: {source}: line 4 is longer than 16,777,216 characters")
    assert server.stats().requests_total == 0


def test_a_line_of_exactly_the_bound_is_read_and_one_over_it_is_not(tmp_path: Path) -> None:
    """The bound counts the line's characters, not its line ending, and holds without one."""
    source = tmp_path / "edge.txt"
    source.write_text("x" * MAX_LINE_CHARS + "\r\n" + "y" * MAX_LINE_CHARS, "utf-8")
    count, _ = anyio.run(count_items, source)
    assert count == 2
    source.write_text("x" * (MAX_LINE_CHARS + 1), "utf-8")  # and no newline at all
    with pytest.raises(LineTooLongError, match="line 1 "):
        anyio.run(count_items, source)


def test_jsonl_lines_nested_too_deep_are_bad_items_and_the_rest_run(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nested past the decoder's stack or the wire's bound (64): that item fails, by line."""
    deep = '{"prompt": "x", "extra": ' + "[" * 100_000
    deep_but_decodable = '{"prompt": "y", "extra": ' + "[" * 70 + "]" * 70 + "}"
    source = write_lines(
        tmp_path / "in.jsonl", [{"prompt": "a fox"}, deep, deep_but_decodable, {"prompt": "b"}]
    )
    out = tmp_path / "out"
    assert run(server, "batch", str(source), "-o", str(out)) == 1
    failures = [json.loads(line) for line in (out / FAILURES_NAME).read_text("utf-8").splitlines()]
    assert [(f["line"], f["error"]) for f in failures] == [
        (2, "line 2 is JSON nested deeper than 64 levels"),
        (3, "line 3 is JSON nested deeper than 64 levels"),
    ]
    assert len(pngs(out)) == 2
    assert server.stats().submit_requests == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_param_nested_too_deep_is_a_usage_error(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """run --param NAME=<JSON 100,000 deep>: exit 2 naming the param, before any request."""
    for value in ("[" * 100_000, "[" * 70 + "]" * 70):
        assert run(server, "run", T2I, "--param", f"prompt={value}") == 2
        err = capsys.readouterr().err
        assert "prompt: the value nests JSON arrays or objects deeper than 64 levels" in err
    assert server.stats().requests_total == 0


# -- the output directory ----------------------------------------------------------------------


COMMANDS_WITH_OUTPUT = [
    ["generate", "a red fox"],
    ["run", T2I, "--param", "prompt=a red fox"],
    ["batch", "IN"],
    ["download", "1234567890123456789"],
]


@pytest.fixture(params=["a file in the way", "no write permission"])
def unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A directory path no file can be written under."""
    if request.param == "a file in the way":
        (tmp_path / "file").write_text("", "utf-8")
        yield tmp_path / "file" / "out"
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("permissions are not enforced for this user (root)")
        yield locked
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("argv", COMMANDS_WITH_OUTPUT, ids=lambda argv: argv[0])
def test_an_unwritable_output_directory_is_one_error_line_before_any_request(
    server: Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    unwritable: Path,
    argv: list[str],
) -> None:
    """-o DIR that cannot take a file: exit 1, one line naming DIR, nothing submitted (or paid)."""
    source = write_lines(tmp_path / "in.txt", ["a fox"])
    argv = [str(source) if a == "IN" else a for a in argv]
    assert run(server, *argv, "-o", str(unwritable)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: cannot write files to {str(unwritable)!r}: ")
    assert server.stats().requests_total == 0


def test_a_missing_output_directory_is_created_before_the_submit(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o a/b/c that does not exist yet is made (parents too), and the files land there."""
    out = tmp_path / "a" / "b" / "c"
    assert run(server, "generate", "a red fox", "-o", str(out)) == 0
    assert len(pngs(out)) == 1
    assert [p.name for p in out.iterdir() if not p.name.endswith(".png")] == []
    capsys.readouterr()


# -- a key echoed back ---------------------------------------------------------------------------

HEX_KEY = "abcdef0123456789abcdef0123456789"


@pytest.fixture
def echoing(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A server that refuses the key with errorCode 1002, quoting it upper-cased; its base URL."""

    async def refuse(request: web.Request) -> web.Response:
        body = {"errorCode": "1002", "errorMessage": f"invalid key {HEX_KEY.upper()}"}
        return web.json_response(body)

    monkeypatch.setenv("RUNNINGHUB_API_KEY", HEX_KEY)
    with anyio.from_thread.start_blocking_portal() as portal:
        routes = {("POST", "/openapi/v2/query"): refuse}
        with portal.wrap_async_context_manager(serve_routes(routes)) as base_url:
            yield base_url


def test_a_key_echoed_in_upper_case_is_not_printed(
    echoing: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The error line quotes the server, but with the key blanked in whatever case it came."""
    assert main(["status", "1234567890123456789", "--base-url", echoing]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: RunningHub refused the API key")
    assert "invalid key ***" in captured.err
    assert HEX_KEY not in (captured.out + captured.err).lower()


# -- Ctrl-C outside the command --------------------------------------------------------------


def _run_module(
    directory: Path, name: str, source: str, *argv: str
) -> subprocess.CompletedProcess[str]:
    """Run *source* as ``python -m name`` (as the CLI runs under ``python -m``), in *directory*."""
    (directory / f"{name}.py").write_text(textwrap.dedent(source), "utf-8")
    return subprocess.run(
        [sys.executable, "-m", name, *argv],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_ctrl_c_while_the_command_line_loads_is_exit_130_and_one_line(tmp_path: Path) -> None:
    """A real SIGINT while the CLI's modules import, inside a string exec (as namedtuple runs)."""
    # The library is loaded first, as either entry point does; then the press lands while
    # the CLI's own parser module is being found, inside exec("..."), which CPython
    # remembers as an unhandled interrupt under -m unless it is reset.
    result = _run_module(
        tmp_path,
        "press_while_loading",
        """
        import os, signal, sys
        import runninghub_async

        class PressCtrlC:
            def find_spec(self, name, path=None, target=None):
                if name == "runninghub_async._cli._parser":
                    sys.meta_path.remove(self)
                    exec("os.kill(os.getpid(), signal.SIGINT)\\nfor _ in range(9): pass")
                return None

        sys.meta_path.insert(0, PressCtrlC())
        from runninghub_async._cli import main
        sys.exit(main())
        """,
        "models",
    )
    assert (result.returncode, result.stderr) == (130, "interrupted\n")
    assert result.stdout == ""


def test_ctrl_c_after_the_command_finished_keeps_its_exit_status(tmp_path: Path) -> None:
    """A SIGINT after main() settled the status (the console script's sys.exit) changes nothing."""
    result = _run_module(
        tmp_path,
        "press_after",
        """
        import os, signal, sys
        from runninghub_async._cli import main

        status = main()
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(9):
            pass
        sys.exit(status)
        """,
        "models",
        "show",
        "no-such-model",
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
