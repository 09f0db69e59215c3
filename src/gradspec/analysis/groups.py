"""Groups of samples as analysis sees them: one run, or several pooled, as long frames, with
per-sample means and response lengths; and their layer-wise means with bootstrap intervals.

``compare`` and the figures both start from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gradspec.analysis.frames import long_frame, n_layers, per_sample, sample_sizes
from gradspec.analysis.stats import bootstrap_mean_ci
from gradspec.config.analysis import CompareConfig
from gradspec.errors import ConfigError
from gradspec.store.query import Run, open_run


@dataclass
class Group:
    """The samples of one side of a comparison, read once."""

    label: str
    runs: list[Run]
    frame: pd.DataFrame
    samples: pd.DataFrame  # per-sample means over layers, with n_response_tokens
    lengths: pd.Series  # n_response_tokens by sample_id
    n_layers: int
    manifest: dict[str, Any] = field(default_factory=dict)
    sizes: pd.DataFrame = field(default_factory=pd.DataFrame)  # sample_id, loss, response and prompt tokens


def _paths(entry: str | Path | Sequence[str | Path]) -> list[Path]:
    return [Path(entry)] if isinstance(entry, (str, Path)) else [Path(e) for e in entry]


def load_group(label: str, paths: Sequence[Path], metrics: Sequence[str]) -> Group:
    """One group from one run, or several pooled (their sample ids prefixed by the run's position)."""
    runs = [open_run(p) for p in paths]
    depths = {n_layers(r) for r in runs}
    if len(depths) > 1:
        raise ConfigError(f"group {label}: pooled runs come from models of different depth ({sorted(depths)})")
    frames, sizes = [], []
    for i, run in enumerate(runs):
        twice = run.scalar("select count(*) - count(distinct sample_id) from samples")
        if twice:
            raise ConfigError(
                f"{run.path}: {twice} sample row(s) appear more than once (two writers at once?); "
                "run gradspec verify on it, and compute it again with --overwrite"
            )
        prefix = f"{i}:" if len(runs) > 1 else ""
        frames.append(long_frame(run, label, metrics).assign(sample_id=lambda f, p=prefix: p + f["sample_id"]))
        sizes.append(sample_sizes(run).assign(sample_id=lambda f, p=prefix: p + f["sample_id"]))
    frame = pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise ConfigError(f"{', '.join(map(str, paths))}: no ok samples to compare")
    if frame["sample_id"].nunique() < 2:
        raise ConfigError(f"group {label}: one ok sample only; a comparison needs at least two per group")
    table = pd.concat(sizes, ignore_index=True)
    lengths = table.set_index("sample_id")["n_response_tokens"]
    return Group(label, runs, frame, per_sample(frame), lengths, depths.pop(), runs[0].manifest, table)


def load_groups(config: CompareConfig) -> list[Group]:
    """One group per entry of ``config.runs``, labelled by ``config.labels`` or the folder names."""
    paths = [_paths(r) for r in config.runs]
    labels = list(config.labels or ["+".join(p.name for p in ps) for ps in paths])
    if len(set(labels)) != len(labels):
        raise ConfigError("runs have the same folder name; give --labels")
    return [load_group(label, ps, config.metrics) for label, ps in zip(labels, paths)]


def layerwise_table(groups: Sequence[Group], n_boot: int, seed: int) -> pd.DataFrame:
    """Mean and bootstrap interval per group, module, metric and layer."""
    rows = []
    for g in groups:
        wide = g.frame.pivot_table(index="sample_id", columns=["metric", "module", "layer"], values="value")
        mean, lo, hi = bootstrap_mean_ci(wide.to_numpy(), n_boot, seed=seed)
        counts = wide.notna().sum().to_numpy()
        for (metric, module, layer), m, low, high, n in zip(wide.columns, mean, lo, hi, counts):
            rows.append(
                {
                    "group": g.label,
                    "metric": metric,
                    "module": module,
                    "layer": int(layer),
                    "depth": layer / max(g.n_layers - 1, 1),
                    "mean": m,
                    "ci_low": low,
                    "ci_high": high,
                    "n": int(n),
                }
            )
    return pd.DataFrame(rows)
