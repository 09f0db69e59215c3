"""The code passes the project's linter, formatter and type checker settings (pyproject.toml [tool.ruff],
[tool.mypy]: strict on src/gradspec)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))


def test_types() -> None:
    """mypy, strict, on src/gradspec (pyproject.toml [tool.mypy]); mypy is in the test extra, so a missing
    one fails here rather than passing unchecked."""
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(args: list[str]) -> None:
    if not Path(RUFF).exists():
        pytest.skip("ruff is not installed (pip install -e .[test])")
    result = subprocess.run([RUFF, *args, "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_function_in_src_is_longer_than_60_lines() -> None:
    """A longer function is split where the split has a name (docs/developing.md)."""
    import ast

    long = []
    for path in sorted((ROOT / "src" / "gradspec").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({size} lines)")
    assert not long, long
