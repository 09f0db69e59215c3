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
variables it uses.
"""

from __future__ import annotations

import itertools
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gradspec.errors import ConfigError

RUN_KEYS = {
    "name", "data", "model", "template", "system_prompt", "max_length", "truncation", "limit", "modules", "field_map",
}  # fmt: skip
SELECTION_KEYS = {"name", "data", "score", "by", "top", "bottom", "match_length", "limit", "model", "max_length"}
COMPARISON_KEYS = {"name", "runs", "labels"}
CORRELATION_KEYS = {"name", "run", "scored"}
DEFAULT_KEYS = {
    "model", "template", "system_prompt", "max_length", "truncation", "limit", "modules", "dtype", "device",
}  # fmt: skip
TOP_KEYS = {"name", "data_root", "grid", "full", "selections", "runs", "comparisons", "correlations", "report"}
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


def _check(entries: list[dict[str, Any]], allowed: set[str], required: set[str], where: str) -> None:
    seen = set()
    for e in entries:
        unknown = set(e) - allowed
        if unknown:
            raise ConfigError(f"{where} '{e.get('name')}': unknown keys {sorted(unknown)}; allowed {sorted(allowed)}")
        lacking = required - set(e)
        if lacking:
            raise ConfigError(f"{where} '{e.get('name')}': missing {sorted(lacking)}")
        if e["name"] in seen:
            raise ConfigError(f"{where}: the name '{e['name']}' is used twice")
        seen.add(e["name"])


def load_experiment(path: str | Path, full: bool = False) -> Experiment:
    """Read, expand and check an experiment file."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{p}: an experiment is a YAML mapping with at least 'name' and 'runs'")
    unknown = set(raw) - TOP_KEYS - DEFAULT_KEYS
    if unknown:
        raise ConfigError(f"{p}: unknown keys {sorted(unknown)}")
    grid = raw.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{p}: grid maps each variable to a non-empty list")
    defaults = {k: raw[k] for k in DEFAULT_KEYS if k in raw}
    if full:
        overrides = raw.get("full") or {}
        defaults.update({k: v for k, v in overrides.items() if k in DEFAULT_KEYS})
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
    _check(exp.selections, SELECTION_KEYS, {"name", "data", "by"}, "selection")
    _check(exp.runs, RUN_KEYS, {"name", "data"}, "run")
    _check(exp.comparisons, COMPARISON_KEYS, {"name", "runs"}, "comparison")
    _check(exp.correlations, CORRELATION_KEYS, {"name", "run", "scored"}, "correlation")
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
