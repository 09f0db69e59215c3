"""Experiment files: YAML, expanded over a grid, checked before anything runs.

    name: quality-splits
    data_root: ../../shared/data        # relative to this file; data paths are relative to it
    model: default                      # defaults for every stage (each entry may override)
    template: plain
    max_length: 256
    limit: 12
    full: {limit: 200, max_length: 2048} # applied with --full (results go to <out>-full); may hold
                                         # grid: {...} with other values for the grid's variables
    grid: {pool: [wiz, her], split: [lowest, highest]}
    pools:                               # optional: several files as one, deduplicated, sampled
      - {name: wiz, data: [a.json, b.json], sample: 256, seed: 0}   # limit: N takes N of each file,
                                                                    # skip: N passes over the first N
      - {name: aims, data: [c.json], where: {prompt_id: {min: 0, max: 39}, generator: [x, y]}}
    selections:                          # optional: score (and select from) a file
      - {name: ifd-wiz, data: "@wiz", score: [ifd, length], by: ifd, top: 8, bottom: 8, match_length: bins}
      - {name: aimed, data: "@wiz", score: [target_similarity], target: "@aims"}  # a target is a pool
    runs:
      - {name: "{pool}-{split}", data: "instruction/reward/{pool}_10k_{split}_200.json"}
      - {name: ifd-high, data: "@ifd-wiz/highest"}   # a selection's output ("@pool" for a pool)
    comparisons:
      - {name: "{pool}", runs: ["{pool}-lowest", "{pool}-highest"], labels: [low, high],
         windows: [8, 16, 32]}             # also at each response window, and the length curve
      - {name: ifd-equal, runs: [ifd-low, ifd-high], reference: ifd}  # equal length vs natural
    correlations:
      - {name: wiz, run: wiz-highest, scored: "@ifd-wiz/scored"}
    evaluation: {instruction: [held_out.json], reasoning: [task_no_cot.json], baseline: random}  # or @pool
    trainings:                           # fine-tune on a selection, measure on the evaluation sets
      - {name: "ifd-s{seed}", method: ifd, data: "@ifd-wiz/highest", seed: "{seed}"}
    report: {title: Quality splits}

An entry that uses ``{var}`` placeholders is repeated for every combination of the grid
variables it uses; a value that is one placeholder alone takes the grid value as it is (a
number stays a number); a variable whose list is empty leaves out every entry that uses it at
that size (``full`` may give it values), and so every evaluation file that uses it. Any option
of the config a stage builds is a key of that stage (compute's for runs, score's and select's for
selections, compare's and correlate's for theirs, train's for trainings, and any of them as a
default at the top), checked by the same rules as the command line: an unknown key or a value
of the wrong type is an error naming the file, the entry, the key and the valid keys.
"""

from __future__ import annotations

import itertools
import math
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradspec.config.analysis import CompareConfig, CorrelateConfig
from gradspec.config.compute import ComputeConfig
from gradspec.config.fields import Leaf, convert, leaf_map
from gradspec.config.names import segment
from gradspec.config.score import ScoreConfig
from gradspec.config.selection import SelectConfig
from gradspec.config.train import HELD_OUT, TrainConfig
from gradspec.config.yaml_files import read_yaml
from gradspec.errors import ConfigError
from gradspec.experiment.entries import (
    ComparisonEntry,
    CorrelationEntry,
    PoolEntry,
    Ref,
    RunEntry,
    SelectionEntry,
    Source,
    TrainingEntry,
    check_refs,
    source,
    windows_of,
)
from gradspec.experiment.pools import pool_entry


def _options(cls: type, without: tuple[str, ...]) -> dict[str, Leaf]:
    return {name: leaf for name, leaf in leaf_map(cls).items() if name not in without}


# The options each kind of entry may set, taken from the configs their stages build: a field
# added to a stage config is a valid key here with no other edit, checked the same way.
RUN_OPTIONS = _options(ComputeConfig, ("data", "out", "workers"))
SCORE_OPTIONS = _options(ScoreConfig, ("data", "out", "metrics"))
SELECTION_OPTIONS = {**SCORE_OPTIONS, **_options(SelectConfig, ("data", "out_dir", "name", "run", "field_map"))}
COMPARISON_OPTIONS = _options(CompareConfig, ("runs", "out", "labels", "reference"))
CORRELATION_OPTIONS = _options(CorrelateConfig, ("run", "scored", "out"))
TRAINING_OPTIONS = _options(TrainConfig, ("data", "out", *HELD_OUT.values()))
DEFAULT_OPTIONS = {**TRAINING_OPTIONS, **SCORE_OPTIONS, **RUN_OPTIONS}
# Keys of the entries themselves (not options of a stage): "score" lists the metrics to score,
# "windows" the response windows a comparison is also made at, "reference" the comparison at
# natural lengths an equal-length one is read against, "method" what a training stands for.
POOL_KEYS = ("name", "data", "sample", "seed", "limit", "skip", "where")
RUN_KEYS = ("name", "data")
SELECTION_KEYS = ("name", "data", "score")
COMPARISON_KEYS = ("name", "runs", "labels", "windows", "reference")
CORRELATION_KEYS = ("name", "run", "scored")
TRAINING_KEYS = ("name", "data", "method")
EVALUATION_KEYS = (*HELD_OUT, "baseline")
TOP_KEYS = (
    "name",
    "data_root",
    "grid",
    "full",
    "pools",
    "selections",
    "runs",
    "comparisons",
    "correlations",
    "evaluation",
    "trainings",
    "report",
)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ALONE = re.compile(r"^\{(\w+)\}$")


@dataclass(frozen=True)
class Experiment:
    """A checked, expanded experiment: its defaults and its typed stages, references resolved."""

    name: str
    path: Path
    data_root: Path
    defaults: dict[str, Any]
    pools: list[PoolEntry] = field(default_factory=list)
    selections: list[SelectionEntry] = field(default_factory=list)
    runs: list[RunEntry] = field(default_factory=list)
    comparisons: list[ComparisonEntry] = field(default_factory=list)
    correlations: list[CorrelationEntry] = field(default_factory=list)
    evaluation: dict[str, Any] = field(default_factory=dict)
    """HELD_OUT's kinds (instruction, reasoning, judged): the held-out files; baseline: the method read against."""
    trainings: list[TrainingEntry] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    full: bool = False


MAX_ENTRIES = 10_000
"""Entries of one kind a grid may expand into (each is a stage: a run, a comparison, a training)."""


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
    out: list[dict[str, Any]] = []
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
        segment(e["name"], f"{where} name")  # it names the stage's file or folder
        if e["name"] in seen:
            raise ConfigError(f"{where}: the name '{e['name']}' is used twice")
        seen.add(e["name"])
        if "score" in e:
            e["score"] = convert(leaf_map(ScoreConfig)["metrics"], e["score"], convert_text=False)


def load_experiment(path: str | Path, full: bool = False, data_root: Path | None = None) -> Experiment:
    """Read, expand and check an experiment file; ``data_root`` (``--data-root``) replaces the file's own,
    so every data path of the file is resolved against it."""
    p = Path(path)
    raw = read_yaml(p, "experiment")
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{p}: an experiment is a YAML mapping with at least 'name' and 'runs'")
    defaults = {k: v for k, v in raw.items() if k not in TOP_KEYS}
    grid = raw.get("grid") or {}
    # An empty list leaves out, at that size, every entry that uses the variable (--full may give it values).
    if not isinstance(grid, dict) or not all(isinstance(v, list) for v in grid.values()):
        raise ConfigError(f"{p}: grid maps each variable to a list of values")
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
    for key in HELD_OUT:  # a held-out file may use a grid variable: [] leaves it out
        files = evaluation.get(key)
        if isinstance(files, list):
            evaluation[key] = [e["file"] for e in expand([{"file": f} for f in files], grid, f"{p}: evaluation {key}")]
    name = segment(raw["name"], f"{p}: name")  # experiments/NAME by default
    root = data_root.resolve() if data_root is not None else (p.parent / raw.get("data_root", ".")).resolve()
    entries = {kind: expand(raw.get(kind) or [], grid, kind) for kind in ENTRY_KINDS}
    for kind, (keys, options, required, where) in ENTRY_KINDS.items():
        try:
            _check(entries[kind], keys, options, required, where)
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from exc
    try:
        exp = _typed(name, p, root, defaults, entries, evaluation, raw.get("report") or {}, full)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from exc
    return exp


ENTRY_KINDS: dict[str, tuple[tuple[str, ...], dict[str, Leaf], set[str], str]] = {
    "pools": (POOL_KEYS, {}, {"name", "data"}, "pool"),
    "selections": (SELECTION_KEYS, SELECTION_OPTIONS, {"name", "data"}, "selection"),
    "runs": (RUN_KEYS, RUN_OPTIONS, {"name", "data"}, "run"),
    "comparisons": (COMPARISON_KEYS, COMPARISON_OPTIONS, {"name", "runs"}, "comparison"),
    "correlations": (CORRELATION_KEYS, CORRELATION_OPTIONS, {"name", "run", "scored"}, "correlation"),
    "trainings": (TRAINING_KEYS, TRAINING_OPTIONS, {"name", "data"}, "training"),
}
"""Each kind of entry: its own keys, the stage options it may set, what it must have, its name in messages."""


def _rest(entry: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """An entry's stage options (its own keys taken out)."""
    return {k: v for k, v in entry.items() if k not in keys}


def _typed(
    name: str,
    path: Path,
    root: Path,
    defaults: dict[str, Any],
    entries: dict[str, list[dict[str, Any]]],
    evaluation: dict[str, Any],
    report: dict[str, Any],
    full: bool,
) -> Experiment:
    """The checked entries as typed stages, every name and reference resolved."""
    pools = [pool_entry(e, root) for e in entries["pools"]]
    selections = [_selection_entry(e, root) for e in entries["selections"]]
    runs = [
        RunEntry(e["name"], source(e["data"], root, f"run '{e['name']}'"), _rest(e, RUN_KEYS)) for e in entries["runs"]
    ]
    if not (runs or entries["trainings"]):
        raise ConfigError("no runs and no trainings")
    names = {r.name for r in runs}
    comparisons = _comparison_entries(entries["comparisons"], names)
    correlations = [_correlation_entry(e, names, root) for e in entries["correlations"]]
    trainings = [_training_entry(e, root) for e in entries["trainings"]]
    held = _held_out(evaluation, root, bool(trainings))
    readers = [(f"run '{r.name}'", r.data) for r in runs] + [(f"training '{t.name}'", t.data) for t in trainings]
    readers += [(f"evaluation {k}", f) for k, files in held.items() for f in files]
    readers += [reader for sel in selections for reader in _target_reader(sel)]
    readers += [(f"correlation '{c.name}'", c.scored) for c in correlations]
    check_refs(pools, selections, readers)
    return Experiment(
        name,
        path,
        root,
        defaults,
        pools,
        selections,
        runs,
        comparisons,
        correlations,
        {**held, "baseline": evaluation.get("baseline")},
        trainings,
        report,
        full,
    )


def _selection_entry(e: dict[str, Any], root: Path) -> SelectionEntry:
    if "by" not in e and not e.get("score"):
        raise ConfigError(f"selection '{e['name']}': give by (to select) or score (to score only)")
    where = f"selection '{e['name']}'"
    return SelectionEntry(
        e["name"], source(e["data"], root, where), tuple(e.get("score") or ()), _rest(e, SELECTION_KEYS)
    )


def _comparison_entries(entries: list[dict[str, Any]], runs: set[str]) -> list[ComparisonEntry]:
    """Comparisons of named runs (a group may pool several), each reference to another comparison resolved."""
    comparisons = []
    for e in entries:
        where = f"comparison '{e['name']}'"
        groups = tuple((g,) if isinstance(g, str) else tuple(g) for g in e["runs"])
        absent = [r for g in groups for r in g if r not in runs]
        if absent:
            raise ConfigError(f"{where}: no run named '{absent[0]}'")
        labels = tuple(e["labels"]) if e.get("labels") is not None else None
        comparisons.append(
            ComparisonEntry(
                e["name"],
                groups,
                labels,
                windows_of(e.get("windows"), where),
                e.get("reference"),
                _rest(e, COMPARISON_KEYS),
            )
        )
    compared = {c.name for c in comparisons}
    for c in comparisons:
        if c.reference is not None and c.reference not in compared:
            raise ConfigError(f"comparison '{c.name}': no comparison named '{c.reference}' to refer to")
    return comparisons


def _correlation_entry(e: dict[str, Any], runs: set[str], root: Path) -> CorrelationEntry:
    if e["run"] not in runs:
        raise ConfigError(f"correlation '{e['name']}': no run named '{e['run']}'")
    where = f"correlation '{e['name']}'"
    return CorrelationEntry(e["name"], e["run"], source(e["scored"], root, where), _rest(e, CORRELATION_KEYS))


def _training_entry(e: dict[str, Any], root: Path) -> TrainingEntry:
    name = e["name"]
    if name == TRAINING_SUMMARY or name.startswith(f"{TRAINING_SUMMARY}-lr"):
        raise ConfigError(f"training '{name}': the name is taken by the trainings' summary")
    return TrainingEntry(
        name, source(e["data"], root, f"training '{name}'"), str(e.get("method", name)), _rest(e, TRAINING_KEYS)
    )


def _held_out(evaluation: dict[str, Any], root: Path, trained: bool) -> dict[str, list[Source]]:
    """The held-out files of each kind (HELD_OUT): data files or pools, never a selection's groups."""
    held = {k: [source(f, root, f"evaluation {k}") for f in evaluation.get(k) or ()] for k in HELD_OUT}
    if trained and not any(held.values()):
        raise ConfigError(f"trainings need an evaluation with {', '.join(HELD_OUT)} sets")
    if any(isinstance(f, Ref) and f.part is not None for files in held.values() for f in files):
        raise ConfigError("evaluation: held-out sets are data files or pools of them (@pool), never a selection's")
    return held


def _target_reader(sel: SelectionEntry) -> list[tuple[str, Source]]:
    """A score's target records may be a pool's file (--target @pool): it reads that pool."""
    target = str(sel.options.get("target") or "")  # checked into a Path already
    if not target.startswith("@"):
        return []
    if "/" in target:
        raise ConfigError(f"selection '{sel.name}': target {target}: a target is a pool (@name)")
    return [(f"selection '{sel.name}' target", Ref(target[1:]))]


TRAINING_SUMMARY = "summary"
"""The folder under ``trainings/`` that holds the trainings' summary."""
