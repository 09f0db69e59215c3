"""The README and the docs say what the code does: every gradspec command line they show parses
against the CLI (options, values, config checks), the README stays short, and its workflow runs
as written on a tiny model."""

from __future__ import annotations

import glob
import json
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gradspec.cli.generate import CONFIGS, given
from gradspec.cli.main import app
from gradspec.config.fields import build

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(?:bash|sh|console)\n(.*?)```", re.S)


def command_lines(markdown: str) -> list[str]:
    """Every gradspec command in the text's shell blocks: continuations joined, comments and the
    ``.venv/bin/`` prefix dropped, each command of an ``a && b`` chain on its own."""
    lines: list[str] = []
    for block in BLOCK.findall(markdown):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()
            for part in (p.strip() for p in line.split("&&")):
                part = part.removeprefix(".venv/bin/")
                if part.startswith("gradspec "):
                    lines.append(part)
    return lines


ALL = [(page.name, line) for page in PAGES for line in command_lines(page.read_text(encoding="utf-8"))]


def test_the_pages_show_commands_at_all() -> None:
    assert len(ALL) >= 15 and any(name == "README.md" for name, _ in ALL)


@pytest.mark.parametrize(("page", "line"), ALL, ids=[f"{p}:{i}" for i, (p, _) in enumerate(ALL)])
def test_every_command_line_in_the_docs_parses(page: str, line: str) -> None:
    args = shlex.split(line)[1:]
    command = app.get_command(click.Context(app), args[0])
    assert command is not None, f"{page}: no command {args[0]!r} in {line!r}"
    if isinstance(command, click.Group):  # gradspec models list | install NAME
        sub = command.get_command(click.Context(command), args[1])
        assert sub is not None, f"{page}: no command {' '.join(args[:2])!r}"
        sub.make_context(args[1], args[2:])
        return
    ctx = command.make_context(args[0], args[1:])
    own = {k: v for k, v in given(ctx).items() if k != "as_json"}
    build(CONFIGS[args[0]], own, where=f"{page}: {line}")


def test_the_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def test_the_readme_workflow_runs_as_written(
    tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's workflow block on a pool of 24 records, with the tiny model given to the
    commands that load one and globs expanded as a shell would."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    workflow = command_lines(text[text.index("## A curator's workflow") :].split("\n## ")[0])
    assert workflow[0].startswith("gradspec inspect") and workflow[-1].startswith("gradspec report")
    pool = [
        {"instruction": f"Question {i}: tell me about item {i}.", "output": " ".join(["word"] * (3 + 2 * i))}
        for i in range(24)
    ]
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pool))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for line in workflow:
        args: list[str] = []
        for arg in shlex.split(line)[1:]:
            args += (sorted(glob.glob(arg)) or [arg]) if "*" in arg else [arg]
        if args[0] in ("inspect", "score", "compute"):
            args += ["--model", str(tiny_llama_dir)]
        if args[0] in ("score", "compute"):
            args.append("--no-progress")
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{line}\n{result.output}"
    assert (tmp_path / "report.html").exists() and (tmp_path / "explore.html").exists()


def test_the_filter_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/filter.md's commands, in order, on a scored file with the fields they read and the page's own
    recipe: the marked file, a selection from it that never holds a dropped record, the kept records
    alone, ODA's layout and back, a datasets folder."""
    page = (ROOT / "docs" / "filter.md").read_text(encoding="utf-8")
    recipe = re.search(r"```yaml\n(.*?)```", page, re.S)
    assert recipe is not None
    (tmp_path / "recipe.yaml").write_text(recipe.group(1))
    scored = [
        {"instruction": f"q{i}", "output": "a " * (i + 1), "ifd": 0.1 * (i % 12), "reward": (i % 7) - 2.0,
         "effective_rank": 10.0 + i, "target_similarity": 0.01 * i, "n_response_tokens": 20 + i, "n_prompt_tokens": 8}
        for i in range(40)
    ]  # fmt: skip
    (tmp_path / "scored.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scored))
    monkeypatch.chdir(tmp_path)
    lines = command_lines(page)
    assert [shlex.split(line)[1] for line in lines].count("filter") >= 4
    for line in lines:
        result = CliRunner().invoke(app, shlex.split(line)[1:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
    marked = [json.loads(line) for line in (tmp_path / "filtered.jsonl").read_text().splitlines()]
    dropped = {r["instruction"] for r in marked if not r["keep"]}
    chosen = json.loads(next((tmp_path / "sel").glob("*_highest_*.json")).read_text())
    assert dropped and chosen and dropped.isdisjoint(r["instruction"] for r in chosen)
    kept = (tmp_path / "train.jsonl").read_text().splitlines()
    assert len(kept) == len(marked) - len(dropped)
    assert (tmp_path / "filtered_hf" / "state.json").exists() and (tmp_path / "kept_ids.jsonl").exists()
