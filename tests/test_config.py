"""Options declared once: the CLI, experiment files and manifests all come from the config fields."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gradspec.cli.generate import option_help
from gradspec.cli.main import app
from gradspec.config.compute import ComputeConfig
from gradspec.config.fields import Options, build, flatten, leaf_map, leaves, replace_leaves
from gradspec.config.prompt import PromptConfig
from gradspec.config.score import SCORE_METRICS, ScoreConfig
from gradspec.errors import ConfigError

SRC = Path(__file__).resolve().parents[1] / "src" / "gradspec"


def commands(group: click.Group = app, prefix: str = "") -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out |= commands(command, f"{prefix}{name} ")
        else:
            out[prefix + name] = command
    return out


def config_of(command: click.Command) -> type[Options]:
    """The config class a generated command builds (from the callback's closure)."""
    callback = command.callback.__wrapped__  # click.pass_context wraps it
    cells = dict(zip(callback.__code__.co_freevars, (c.cell_contents for c in callback.__closure__)))
    return cells["cls"]


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_is_a_documented_field_and_its_help_is_that_documentation(name: str) -> None:
    command = commands()[name]
    cls = config_of(command)
    fields = {leaf.name: leaf for leaf in leaves(cls)}
    params = {p.name: p for p in command.params if p.name != "as_json"}  # --json: how to print, not an option
    assert set(params) == set(fields), "the command's parameters are exactly the config's options"
    for leaf_name, leaf in fields.items():
        assert leaf.doc, f"{cls.__name__}.{leaf_name} has no docstring"
        param = params[leaf_name]
        if isinstance(param, click.Option):
            assert param.help == option_help(leaf)
            assert param.help.startswith(" ".join(leaf.doc.split()))
            assert not re.search(r" \.(\s|$)", param.help) and "[default: None]" not in param.help
            if leaf.choices:
                assert all(str(c) in param.make_metavar(click.Context(command)) for c in leaf.choices)
        else:
            assert " ".join(leaf.doc.split()) in command.help  # arguments are documented in the command's help


@dataclasses.dataclass(frozen=True)
class Extra(Options):
    colour: str = "blue"
    """The colour of the thing."""


@dataclasses.dataclass(frozen=True)
class Composite(Options):
    extra: Extra = dataclasses.field(default_factory=Extra)
    prompt: PromptConfig = dataclasses.field(default_factory=PromptConfig)


def test_a_field_added_to_a_stage_config_reaches_the_cli_and_the_manifest() -> None:
    group = click.Group("g")
    seen: list[Composite] = []

    from gradspec.cli.generate import config_command

    config_command(group, "run", Composite)(seen.append)
    result = CliRunner().invoke(group, ["run", "--help"])
    assert "--colour TEXT" in result.output and "The colour of the thing. [default: blue]" in result.output
    CliRunner().invoke(group, ["run", "--colour", "red", "--max-length", "7"], catch_exceptions=False)
    assert seen[0].extra.colour == "red" and seen[0].prompt.max_length == 7

    from gradspec.config.fields import flatten

    assert flatten(seen[0])["colour"] == "red"


def test_build_converts_text_and_checks_every_rule_in_one_line() -> None:
    config = build(ComputeConfig, {"data": "d.json", "out": "r", "modules": "q,v", "max_length": "64"})
    assert config.capture.modules == ("q", "v") and config.prompt.max_length == 64
    assert build(ComputeConfig, {"data": "d", "out": "r", "modules": "all"}).capture.modules is None
    cases = {
        "colour": ("red", "unknown key 'colour'; valid keys: "),
        "max_length": ("many", "--max-length expects an integer, got 'many'"),
        "dtype": ("float8", "--dtype must be one of float32, bfloat16, float16, got 'float8'"),
        "limit": ("0", "--limit must be at least 1, got 0"),
        "modules": ("q,attn", "--modules: unknown attn; choose from q, k, v, o, gate, up, down or all"),
        "field_map": ("output", "must look like canonical=source"),
        "spectra": ("maybe", "--spectra expects true or false"),
    }
    for key, (value, message) in cases.items():
        with pytest.raises(ConfigError) as info:
            build(ComputeConfig, {"data": "d", "out": "r", key: value}, where="command line")
        assert message in str(info.value) and "\n" not in str(info.value), key
    with pytest.raises(ConfigError, match="--out is required"):
        build(ComputeConfig, {"data": "d"})


def test_of_and_replace_reach_options_in_any_section() -> None:
    config = ComputeConfig.of(data="d.json", out="r", max_length=99, prompt=PromptConfig("plain"))
    assert config.prompt == PromptConfig("plain", max_length=99)  # a whole section, with one option changed
    changed = replace_leaves(config, device="cpu", spectra=True)
    assert changed.loading.device == "cpu" and changed.spectral.spectra and changed.prompt == config.prompt
    with pytest.raises(ConfigError, match="--dtype must be one of"):
        ScoreConfig.of(data="d", out="s.jsonl", dtype="float8")  # score checks dtype like compute


def test_identity_is_every_option_that_can_change_a_number() -> None:
    identity = {name for name, leaf in leaf_map(ComputeConfig).items() if leaf.identity}
    assert identity == {
        "field_map", "model", "dtype", "trust_remote_code", "template", "system_prompt", "max_length", "truncation",
        "response_tokens", "prompt_tokens", "record_windows", "modules", "steps", "spectra", "spectra_precision",
        "core_dtype",
    }  # fmt: skip


def test_a_fingerprint_of_set_options_survives_a_new_option_at_its_default() -> None:
    config = ComputeConfig.of(data="d.json", out="r", max_length=99)
    assert flatten(config, set_only=True) == {"data": "d.json", "out": "r", "max_length": 99}
    assert flatten(replace_leaves(config, steps="sentence"), set_only=True)["steps"] == "sentence"
    assert set(flatten(config)) == set(leaf_map(ComputeConfig))  # without set_only: every option


def test_score_metrics_are_the_registered_ones() -> None:
    from gradspec.score import SCORERS

    assert set(SCORERS) == set(SCORE_METRICS)
    assert all(m.fields for m in SCORERS.values())
    assert {name for name, m in SCORERS.items() if m.needs_model} == {
        "ifd",
        "length",
        "gradient",
        "grad_quality",
        "target_similarity",
        "rds",
    }


def test_loading_an_experiment_file_imports_neither_torch_nor_pandas() -> None:
    code = (
        "import sys; from gradspec.experiment import load_experiment\n"
        "load_experiment('configs/experiments/selection.yaml')\n"
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules, sorted(sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr[-500:]


@pytest.mark.parametrize(
    "module",
    [
        "gradspec.store",
        "gradspec.analysis",
        "gradspec.report",
        "gradspec.selection",
        "gradspec.cli.main",
        "gradspec.artifacts",
        "gradspec.experiment",
        "gradspec.train.results",
        "gradspec.score.grad_quality",
    ],
)
def test_readers_and_the_command_line_do_not_import_torch(module: str) -> None:
    code = f"import {module}, gradspec.store.contract, sys; assert 'torch' not in sys.modules, sorted(sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-500:]


def test_help_and_version_do_not_load_torch() -> None:
    code = (
        "import sys; from gradspec.cli.main import app\n"
        "try: app.main(['--version'])\n"
        "except SystemExit: pass\n"
        "assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.startswith("gradspec ")


def module_imports() -> dict[str, set[str]]:
    """gradspec module -> gradspec modules it imports anywhere in its file (functions too)."""
    names = {
        ".".join(("gradspec", *p.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        for p in SRC.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        me = ".".join(("gradspec", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gradspec"):
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    edges.add(child if child in names else node.module)
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.startswith("gradspec"))
        graph[me] = {e for e in edges if e in names and e != me}
    return graph


def test_no_import_circles() -> None:
    graph = module_imports()
    cycles = []

    def visit(node: str, path: list[str], seen: set[str]) -> None:
        for nxt in graph.get(node, ()):
            if nxt in path:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in seen:
                seen.add(nxt)
                visit(nxt, [*path, nxt], seen)

    for start in graph:
        visit(start, [start], {start})
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles[:10])
