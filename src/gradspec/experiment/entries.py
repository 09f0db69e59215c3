"""An experiment's entries as typed stages, with their references resolved once, at load time.

A stage reads data files (under the experiment's data root) or the output of an earlier stage, a
``Ref``: ``@pool`` (a pool's file), ``@selection/scored`` (a selection's scored file) or
``@selection/highest`` (one of its groups: ``highest``, ``lowest``, ``q1of4`` ..., ``kept``). A
reference to a stage that does not exist, or to an output that stage does not make, is a one-line
error naming the entry when the file is loaded, not a failure halfway through a run.

Nothing here imports more than the configs: checking an experiment file loads no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from gradspec.config.fields import Plain
from gradspec.errors import ConfigError


@dataclass(frozen=True)
class Ref:
    """An earlier stage's output."""

    stage: str
    part: str | None = None

    def __str__(self) -> str:
        return f"@{self.stage}" + (f"/{self.part}" if self.part else "")


Source = Path | Ref
"""What a stage reads: a data file, or an earlier stage's output."""


def spec_of(value: Any) -> Any:
    """An entry as its stage's fingerprint reads it: dataclasses as dicts, typed option values as JSON
    keeps them, a reference as ``{"step", "part"}`` (the keys gradspec 0.2 wrote, when stages were
    called steps: a folder made then resumes without redoing a stage)."""
    if isinstance(value, Ref):
        return {"step": value.stage, "part": value.part}
    if isinstance(value, Plain):
        return value.plain()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: spec_of(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: spec_of(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [spec_of(v) for v in value]
    return value


def source(value: Any, data_root: Path, where: str) -> Source:
    """A data path (relative to ``data_root``) or a ``Ref`` from an entry's text."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a data file or @name, got {value!r}")
    if value.startswith("@"):
        stage, _, part = value[1:].partition("/")
        return Ref(stage, part or None)
    p = Path(value)
    return p if p.is_absolute() else data_root / p


@dataclass(frozen=True)
class PoolEntry:
    """Several files as one JSON list, deduplicated, then sampled."""

    name: str
    files: tuple[Source, ...]
    sample: int | None = None
    seed: int = 0
    limit: int | None = None
    where: Mapping[str, Any] | None = None
    """field -> value (or list of values) a record must have to be taken (before ``limit``)."""
    skip: int = 0
    """Matching records of each file passed over before any is taken (a held-out set's first
    records, so a target drawn from the same file is disjoint from them)."""


@dataclass(frozen=True)
class SelectionEntry:
    """Score a file (``score``), then select from it (``by``), or either alone."""

    name: str
    data: Source
    score: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    """Score's and select's options, checked."""

    def parts(self) -> set[str]:
        """The outputs other stages may refer to (``@name/part``)."""
        out = {"scored"} if self.score else set()
        if "by" in self.options:
            if self.options.get("top") or self.options.get("match_length"):
                out.add("highest")
            if self.options.get("bottom") or self.options.get("match_length"):
                out.add("lowest")
            k = self.options.get("quantiles")
            out |= {f"q{i}of{k}" for i in range(1, (k or 0) + 1)}
            if self.options.get("keep_column"):
                out.add("kept")
        return out


@dataclass(frozen=True)
class RunEntry:
    """A run folder computed on a data file or a selection's group."""

    name: str
    data: Source
    options: Mapping[str, Any] = field(default_factory=dict)
    """Compute's options, checked."""


@dataclass(frozen=True)
class ComparisonEntry:
    """Groups of runs compared (a group may pool several runs), at natural length and at each window."""

    name: str
    groups: tuple[tuple[str, ...], ...]
    labels: tuple[str, ...] | None = None
    windows: tuple[int, ...] = ()
    reference: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(run for group in self.groups for run in group)


@dataclass(frozen=True)
class CorrelationEntry:
    """A run's gradient metrics against the quality scores of a scored file."""

    name: str
    run: str
    scored: Source
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingEntry:
    """A fine-tune on a selection, measured on the experiment's held-out sets."""

    name: str
    data: Source
    method: str
    options: Mapping[str, Any] = field(default_factory=dict)


Stage = PoolEntry | SelectionEntry | RunEntry | ComparisonEntry | CorrelationEntry | TrainingEntry


def check_refs(
    pools: Sequence[PoolEntry], selections: Sequence[SelectionEntry], readers: Sequence[tuple[str, Source]]
) -> None:
    """Every reference names an earlier pool (``@name``) or selection (``@name/part``) and an output
    it makes (``readers``: (entry, source) of every stage that reads one). A selection may read a pool
    or an earlier selection only."""
    by_pool = {p.name: p for p in pools}
    by_selection: dict[str, SelectionEntry] = {}

    def check(entry: str, src: Source) -> None:
        if not isinstance(src, Ref):
            return
        if src.part is None:
            if src.stage not in by_pool:
                names = ", ".join(f"@{n}" for n in by_pool) or "none"
                raise ConfigError(f"{entry}: {src} names no pool (pools: {names}; a selection's output is @name/part)")
            return
        maker = by_selection.get(src.stage)
        if maker is None:
            names = ", ".join(by_selection) or "none"
            raise ConfigError(f"{entry}: {src} names no earlier selection (selections: {names})")
        parts = sorted(maker.parts())
        if src.part not in parts:
            offered = ", ".join(f"@{src.stage}/{p}" for p in parts) or "nothing"
            raise ConfigError(f"{entry}: {src}: selection {src.stage} makes no such output (it makes {offered})")

    for pool in pools:
        for f in pool.files:
            if isinstance(f, Ref):
                raise ConfigError(f"pool '{pool.name}': {f}: a pool reads data files only")
    for sel in selections:
        check(f"selection '{sel.name}'", sel.data)
        by_selection[sel.name] = sel
    for entry, src in readers:
        check(entry, src)


def windows_of(value: Any, where: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if not (
        isinstance(value, list)
        and value
        and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in value)
    ):
        raise ConfigError(f"{where}: windows is a list of token counts, e.g. [8, 16, 32]")
    return tuple(value)
