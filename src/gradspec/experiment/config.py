"""Experiment files: YAML, expanded over a grid, checked before anything runs.

    name: quality-splits
    data_root: ../../shared/data        # relative to this file; data paths are relative to it
    model: default                      # defaults for every run (each run may override)
    template: plain
    max_length: 256
    limit: 12
    full: {limit: 200, max_length: 2048} # applied with --full (results go to <out>-full)
    grid: {pool: [wiz, her], split: [lowest, highest]}
    selections:                          # optional: score a pool, then select from it
      - {name: ifd-wiz, data: pool.json, score: [ifd, length], by: ifd, top: 8, bottom: 8, match_length: true}
    runs:
      - {name: "{pool}-{split}", data: "instruction/reward/{pool}_10k_{split}_200.json"}
      - {name: ifd-high, data: "@ifd-wiz/highest"}   # a selection's output
    comparisons:
      - {name: "{pool}", runs: ["{pool}-lowest", "{pool}-highest"], labels: [low, high]}
    correlations:
      - {name: wiz, run: wiz-highest, scored: "@ifd-wiz/scored"}
    report: {title: Quality splits}

An entry that uses ``{var}`` placeholders is repeated for every combination of the grid
variables it uses. Any option of the config a step builds is a key of that step (compute's for
runs, score's and select's for selections, compare's and correlate's for theirs, and any of
them as a default at the top), checked by the same rules as the command line: an unknown key
or a value of the wrong type is an error naming the file, the entry, the key and the valid keys.
"""

from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gradspec.config.analysis import CompareConfig, CorrelateConfig
from gradspec.config.compute import ComputeConfig
from gradspec.config.fields import Leaf, convert, leaf_map
from gradspec.config.score import ScoreConfig
from gradspec.config.selection import SelectConfig
from gradspec.errors import ConfigError, first_line


def _options(cls: type, without: tuple[str, ...]) -> dict[str, Leaf]:
    return {name: leaf for name, leaf in leaf_map(cls).items() if name not in without}


# The options each kind of entry may set, taken from the configs their steps build: a field
# added to a stage config is a valid key here with no other edit, checked the same way.
RUN_OPTIONS = _options(ComputeConfig, ("data", "out", "workers"))
SCORE_OPTIONS = _options(ScoreConfig, ("data", "out", "metrics"))
SELECTION_OPTIONS = {**SCORE_OPTIONS, **_options(SelectConfig, ("data", "out_dir", "name", "run", "field_map"))}
COMPARISON_OPTIONS = _options(CompareConfig, ("runs", "out", "labels"))
CORRELATION_OPTIONS = _options(CorrelateConfig, ("run", "scored", "out"))
DEFAULT_OPTIONS = {**SCORE_OPTIONS, **RUN_OPTIONS}
# Keys of the entries themselves (not options of a stage); "score" lists the metrics to score.
RUN_KEYS = ("name", "data")
SELECTION_KEYS = ("name", "data", "score")
COMPARISON_KEYS = ("name", "runs", "labels")
CORRELATION_KEYS = ("name", "run", "scored")
TOP_KEYS = ("name", "data_root", "grid", "full", "selections", "runs", "comparisons", "correlations", "report")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass
class Experiment:
    """A checked, expanded experiment."""

    name: str
    path: Path
    data_root: Path
    defaults: dict[str, Any]
    selections: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    correlations: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    full: bool = False


def _variables(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, list):
        return set().union(*map(_variables, value)) if value else set()
    if isinstance(value, dict):
        return set().union(*map(_variables, value.values())) if value else set()
    return set()


def _fill(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return string.Formatter().vformat(value, (), env) if _PLACEHOLDER.search(value) else value
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
        for combo in itertools.product(*(grid[n] for n in names)):
            out.append(_fill(entry, {n: str(v) for n, v in zip(names, combo)}))
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
        if e["name"] in seen:
            raise ConfigError(f"{where}: the name '{e['name']}' is used twice")
        seen.add(e["name"])
        if "score" in e:
            e["score"] = convert(leaf_map(ScoreConfig)["metrics"], e["score"], convert_text=False)


def load_experiment(path: str | Path, full: bool = False) -> Experiment:
    """Read, expand and check an experiment file."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({first_line(exc)})") from exc
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{p}: an experiment is a YAML mapping with at least 'name' and 'runs'")
    defaults = {k: v for k, v in raw.items() if k not in TOP_KEYS}
    check_options(defaults, (), DEFAULT_OPTIONS, str(p))
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{p}: grid maps each variable to a non-empty list")
    overrides = dict(raw.get("full") or {})
    check_options(overrides, (), DEFAULT_OPTIONS, f"{p}: full")
    if full:
        defaults.update(overrides)
    exp = Experiment(
        name=str(raw["name"]),
        path=p,
        data_root=(p.parent / raw.get("data_root", ".")).resolve(),
        defaults=defaults,
        selections=expand(raw.get("selections") or [], grid, "selections"),
        runs=expand(raw.get("runs") or [], grid, "runs"),
        comparisons=expand(raw.get("comparisons") or [], grid, "comparisons"),
        correlations=expand(raw.get("correlations") or [], grid, "correlations"),
        report=raw.get("report") or {},
        full=full,
    )
    for entries, keys, options, required, where in (
        (exp.selections, SELECTION_KEYS, SELECTION_OPTIONS, {"name", "data", "by"}, "selection"),
        (exp.runs, RUN_KEYS, RUN_OPTIONS, {"name", "data"}, "run"),
        (exp.comparisons, COMPARISON_KEYS, COMPARISON_OPTIONS, {"name", "runs"}, "comparison"),
        (exp.correlations, CORRELATION_KEYS, CORRELATION_OPTIONS, {"name", "run", "scored"}, "correlation"),
    ):
        try:
            _check(entries, keys, options, required, where)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from exc
    if not exp.runs:
        raise ConfigError(f"{p}: no runs")
    names = {r["name"] for r in exp.runs}
    for c in exp.comparisons:
        members = [m for r in c["runs"] for m in ([r] if isinstance(r, str) else r)]  # a group may pool runs
        absent = [r for r in members if r not in names]
        if absent:
            raise ConfigError(f"comparison '{c['name']}': no run named '{absent[0]}'")
    for c in exp.correlations:
        if c["run"] not in names:
            raise ConfigError(f"correlation '{c['name']}': no run named '{c['run']}'")
    return exp
