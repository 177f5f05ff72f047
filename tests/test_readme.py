"""The README's examples stay valid Python, and its set-up commands stay the ones CI uses."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_python_examples_compile(source: str) -> None:
    """Every python block compiles (top-level `await`/`async with` allowed, as in a REPL)."""
    compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    """The README keeps two set-up commands; .ci/run runs the same test command."""
    setup = README.read_text(encoding="utf-8").split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, re.DOTALL)
    assert len(commands) == 2
    assert commands[0].endswith("runninghub-async demo")
    assert commands[1].endswith("python -m pytest")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in ci
