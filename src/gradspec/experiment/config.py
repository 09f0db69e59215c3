"""Experiment files: YAML, expanded over a grid, checked before anything runs.

    name: quality-splits
    data_root: ../../shared/data        # relative to this file; data paths are relative to it
    model: default                      # defaults for every step (each entry may override)
    template: plain
    max_length: 256
    limit: 12
    full: {limit: 200, max_length: 2048} # applied with --full (results go to <out>-full); may hold
                                         # grid: {...} with other values for the grid's variables
    grid: {pool: [wiz, her], split: [lowest, highest]}
    pools:                               # optional: several files as one, deduplicated, sampled
      - {name: wiz, data: [a.json, b.json], sample: 256, seed: 0}   # limit: N takes N of each file
    selections:                          # optional: score (and select from) a file
      - {name: ifd-wiz, data: "@wiz", score: [ifd, length], by: ifd, top: 8, bottom: 8, match_length: bins}
    runs:
      - {name: "{pool}-{split}", data: "instruction/reward/{pool}_10k_{split}_200.json"}
      - {name: ifd-high, data: "@ifd-wiz/highest"}   # a selection's output ("@pool" for a pool)
    comparisons:
      - {name: "{pool}", runs: ["{pool}-lowest", "{pool}-highest"], labels: [low, high],
         windows: [8, 16, 32]}             # also at each response window, and the length curve
      - {name: ifd-equal, runs: [ifd-low, ifd-high], reference: ifd}  # equal length vs natural
    correlations:
      - {name: wiz, run: wiz-highest, scored: "@ifd-wiz/scored"}
    evaluation: {instruction: [held_out.json], reasoning: [task_no_cot.json], baseline: random}
    trainings:                           # fine-tune on a selection, measure on the evaluation sets
      - {name: "ifd-s{seed}", method: ifd, data: "@ifd-wiz/highest", seed: "{seed}"}
    report: {title: Quality splits}

An entry that uses ``{var}`` placeholders is repeated for every combination of the grid
variables it uses; a value that is one placeholder alone takes the grid value as it is (a
number stays a number). Any option of the config a step builds is a key of that step
(compute's for runs, score's and select's for selections, compare's and correlate's for
theirs, train's for trainings, and any of them as a default at the top), checked by the same
rules as the command line: an unknown key or a value of the wrong type is an error naming the
file, the entry, the key and the valid keys.
"""

from __future__ import annotations

import itertools
import math
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gradspec.config.analysis import CompareConfig, CorrelateConfig
from gradspec.config.compute import ComputeConfig
from gradspec.config.fields import Leaf, convert, leaf_map
from gradspec.config.names import segment
from gradspec.config.score import ScoreConfig
from gradspec.config.selection import SelectConfig
from gradspec.config.train import TrainConfig
from gradspec.errors import ConfigError, first_line


def _options(cls: type, without: tuple[str, ...]) -> dict[str, Leaf]:
    return {name: leaf for name, leaf in leaf_map(cls).items() if name not in without}


# The options each kind of entry may set, taken from the configs their steps build: a field
# added to a stage config is a valid key here with no other edit, checked the same way.
RUN_OPTIONS = _options(ComputeConfig, ("data", "out", "workers"))
SCORE_OPTIONS = _options(ScoreConfig, ("data", "out", "metrics"))
SELECTION_OPTIONS = {**SCORE_OPTIONS, **_options(SelectConfig, ("data", "out_dir", "name", "run", "field_map"))}
COMPARISON_OPTIONS = _options(CompareConfig, ("runs", "out", "labels", "reference"))
CORRELATION_OPTIONS = _options(CorrelateConfig, ("run", "scored", "out"))
TRAINING_OPTIONS = _options(TrainConfig, ("data", "out", "eval_instruction", "eval_reasoning"))
DEFAULT_OPTIONS = {**TRAINING_OPTIONS, **SCORE_OPTIONS, **RUN_OPTIONS}
# Keys of the entries themselves (not options of a stage): "score" lists the metrics to score,
# "windows" the response windows a comparison is also made at, "reference" the comparison at
# natural lengths an equal-length one is read against, "method" what a training stands for.
POOL_KEYS = ("name", "data", "sample", "seed", "limit")
RUN_KEYS = ("name", "data")
SELECTION_KEYS = ("name", "data", "score")
COMPARISON_KEYS = ("name", "runs", "labels", "windows", "reference")
CORRELATION_KEYS = ("name", "run", "scored")
TRAINING_KEYS = ("name", "data", "method")
EVALUATION_KEYS = ("instruction", "reasoning", "baseline")
TOP_KEYS = (
    "name", "data_root", "grid", "full", "pools", "selections", "runs", "comparisons", "correlations", "evaluation",
    "trainings", "report",
)  # fmt: skip
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ALONE = re.compile(r"^\{(\w+)\}$")


@dataclass
class Experiment:
    """A checked, expanded experiment."""

    name: str
    path: Path
    data_root: Path
    defaults: dict[str, Any]
    pools: list[dict[str, Any]] = field(default_factory=list)
    selections: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    correlations: list[dict[str, Any]] = field(default_factory=list)
    evaluation: dict[str, Any] = field(default_factory=dict)
    trainings: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    full: bool = False


MAX_NODES = 100_000
"""Values an experiment file may hold once its aliases are expanded: real files hold hundreds."""
MAX_YAML_DEPTH = 64
MAX_ENTRIES = 10_000
"""Entries of one kind a grid may expand into (each is a step: a run, a comparison, a training)."""


def bounded_yaml(text: str, path: Path) -> Any:
    """``yaml.safe_load`` of ``text``, refused before anything is built when its aliases make a
    cycle, nest deeper than ``MAX_YAML_DEPTH`` or expand beyond ``MAX_NODES`` values (an alias
    tree of a few lines can otherwise expand to billions)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes: dict[int, int] = {}
        open_nodes: set[int] = set()
        stack: list[tuple[yaml.Node, int, bool]] = [(node, 1, False)]
        while stack:
            current, level, children_done = stack.pop()
            key = id(current)
            if children_done:
                open_nodes.discard(key)
                children = _children(current)
                sizes[key] = 1 + sum(sizes[id(c)] for c in children)
                if sizes[key] > MAX_NODES:
                    raise ConfigError(f"{path}: expands to more than {MAX_NODES:,} values (aliases of aliases?)")
                continue
            if key in sizes:
                continue
            if key in open_nodes:
                raise ConfigError(f"{path}: an alias refers to itself (line {current.start_mark.line + 1})")
            if level > MAX_YAML_DEPTH:
                raise ConfigError(f"{path}: nested deeper than {MAX_YAML_DEPTH} levels")
            open_nodes.add(key)
            stack.append((current, level, True))
            stack.extend((c, level + 1, False) for c in _children(current))
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _variables(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, list):
        return set().union(*map(_variables, value)) if value else set()
    if isinstance(value, dict):
        return set().union(*map(_variables, value.values())) if value else set()
    return set()


def _fill(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, str):
        alone = _ALONE.match(value)
        if alone:
            return env[alone.group(1)]  # the grid value itself: a number stays a number
        text = {k: str(v) for k, v in env.items()}
        return string.Formatter().vformat(value, (), text) if _PLACEHOLDER.search(value) else value
    if isinstance(value, list):
        return [_fill(v, env) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, env) for k, v in value.items()}
    return value


def expand(entries: list[dict[str, Any]], grid: dict[str, list[Any]], where: str) -> list[dict[str, Any]]:
    """Each entry once per combination of the grid variables its values use."""
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}[{i}]: expected a mapping, got {type(entry).__name__}")
        names = sorted(_variables(entry))
        missing = [n for n in names if n not in grid]
        if missing:
            raise ConfigError(f"{where}[{i}]: placeholder {{{missing[0]}}} is not a grid variable")
        if len(out) + math.prod(len(grid[n]) for n in names) > MAX_ENTRIES:
            raise ConfigError(f"{where}: the grid expands to more than {MAX_ENTRIES:,} entries; use fewer values")
        for combo in itertools.product(*(grid[n] for n in names)):
            out.append(_fill(entry, dict(zip(names, combo))))
    return out


def check_options(values: dict[str, Any], keys: tuple[str, ...], options: dict[str, Leaf], where: str) -> None:
    """Convert each option in place with its field's rules; any other key is an error naming the valid ones."""
    for key in list(values):
        if key in keys:
            continue
        leaf = options.get(key)
        if leaf is None:
            raise ConfigError(f"{where}: unknown key '{key}'; valid keys: {', '.join([*keys, *options])}")
        try:
            values[key] = convert(leaf, values[key], convert_text=False)
        except ConfigError as exc:
            raise ConfigError(f"{where}: key '{key}': {exc}") from exc


def _check(
    entries: list[dict[str, Any]],
    keys: tuple[str, ...],
    options: dict[str, Leaf],
    required: set[str],
    where: str,
) -> None:
    seen = set()
    for e in entries:
        check_options(e, keys, options, f"{where} '{e.get('name')}'")
        lacking = required - set(e)
        if lacking:
            raise ConfigError(f"{where} '{e.get('name')}': missing {sorted(lacking)}")
        if isinstance(e["name"], int) and not isinstance(e["name"], bool):
            e["name"] = str(e["name"])  # a grid value used alone as the name
        segment(e["name"], f"{where} name")  # it names the step's file or folder
        if e["name"] in seen:
            raise ConfigError(f"{where}: the name '{e['name']}' is used twice")
        seen.add(e["name"])
        if "score" in e:
            e["score"] = convert(leaf_map(ScoreConfig)["metrics"], e["score"], convert_text=False)
        windows = e.get("windows")
        if windows is not None and not (
            isinstance(windows, list) and windows and all(isinstance(k, int) and k >= 1 for k in windows)
        ):
            raise ConfigError(f"{where} '{e['name']}': windows is a list of token counts, e.g. [8, 16, 32]")


def load_experiment(path: str | Path, full: bool = False) -> Experiment:
    """Read, expand and check an experiment file."""
    p = Path(path)
    try:
        raw = bounded_yaml(p.read_text(encoding="utf-8"), p)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read it ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({first_line(exc)})") from exc
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{p}: an experiment is a YAML mapping with at least 'name' and 'runs'")
    defaults = {k: v for k, v in raw.items() if k not in TOP_KEYS}
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{p}: grid maps each variable to a non-empty list")
    overrides = dict(raw.get("full") or {})
    grid_overrides = overrides.pop("grid", None) or {}
    if not isinstance(grid_overrides, dict) or not set(grid_overrides) <= set(grid):
        raise ConfigError(f"{p}: full: grid may only give other values to the grid's own variables")
    if full:
        defaults.update(overrides)
        grid = {**grid, **grid_overrides}
    # A default may use a grid variable that has one value (a size the full block changes).
    used = _variables(defaults)
    several = sorted(n for n in used if len(grid.get(n, ())) != 1)
    if several:
        raise ConfigError(f"{p}: a default can only use a grid variable with one value; {{{several[0]}}} has not")
    defaults = _fill(defaults, {n: grid[n][0] for n in used})
    check_options(defaults, (), DEFAULT_OPTIONS, str(p))
    check_options({k: v for k, v in overrides.items() if not _variables(v)}, (), DEFAULT_OPTIONS, f"{p}: full")
    evaluation = dict(raw.get("evaluation") or {})
    unknown = set(evaluation) - set(EVALUATION_KEYS)
    if unknown:
        raise ConfigError(
            f"{p}: evaluation: unknown key '{sorted(unknown)[0]}'; valid keys: {', '.join(EVALUATION_KEYS)}"
        )
    exp = Experiment(
        name=segment(raw["name"], f"{p}: name"),  # experiments/NAME by default
        path=p,
        data_root=(p.parent / raw.get("data_root", ".")).resolve(),
        defaults=defaults,
        pools=expand(raw.get("pools") or [], grid, "pools"),
        selections=expand(raw.get("selections") or [], grid, "selections"),
        runs=expand(raw.get("runs") or [], grid, "runs"),
        comparisons=expand(raw.get("comparisons") or [], grid, "comparisons"),
        correlations=expand(raw.get("correlations") or [], grid, "correlations"),
        evaluation=evaluation,
        trainings=expand(raw.get("trainings") or [], grid, "trainings"),
        report=raw.get("report") or {},
        full=full,
    )
    for entries, keys, options, required, where in (
        (exp.pools, POOL_KEYS, {}, {"name", "data"}, "pool"),
        (exp.selections, SELECTION_KEYS, SELECTION_OPTIONS, {"name", "data"}, "selection"),
        (exp.runs, RUN_KEYS, RUN_OPTIONS, {"name", "data"}, "run"),
        (exp.comparisons, COMPARISON_KEYS, COMPARISON_OPTIONS, {"name", "runs"}, "comparison"),
        (exp.correlations, CORRELATION_KEYS, CORRELATION_OPTIONS, {"name", "run", "scored"}, "correlation"),
        (exp.trainings, TRAINING_KEYS, TRAINING_OPTIONS, {"name", "data"}, "training"),
    ):
        try:
            _check(entries, keys, options, required, where)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from exc
    for sel in exp.selections:
        if "by" not in sel and not sel.get("score"):
            raise ConfigError(f"{p}: selection '{sel['name']}': give by (to select) or score (to score only)")
    if not (exp.runs or exp.trainings):
        raise ConfigError(f"{p}: no runs and no trainings")
    names = {r["name"] for r in exp.runs}
    comparisons = {c["name"] for c in exp.comparisons}
    for c in exp.comparisons:
        members = [m for r in c["runs"] for m in ([r] if isinstance(r, str) else r)]  # a group may pool runs
        absent = [r for r in members if r not in names]
        if absent:
            raise ConfigError(f"{p}: comparison '{c['name']}': no run named '{absent[0]}'")
        if c.get("reference") is not None and c["reference"] not in comparisons:
            raise ConfigError(f"{p}: comparison '{c['name']}': no comparison named '{c['reference']}' to refer to")
    for c in exp.correlations:
        if c["run"] not in names:
            raise ConfigError(f"{p}: correlation '{c['name']}': no run named '{c['run']}'")
    if exp.trainings and not (evaluation.get("instruction") or evaluation.get("reasoning")):
        raise ConfigError(f"{p}: trainings need an evaluation with instruction or reasoning sets")
    return exp
