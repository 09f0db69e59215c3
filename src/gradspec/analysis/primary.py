"""The gradient against the loss, without giving the gradient the better odds.

``beyond.csv`` reads every metric and module, and the best of those readings is the highest of
several noisy AUROCs: under no effect at all, the best of 8 sits well above 0.5 (at 100 to 200
samples a group, a median near 0.55 and a 95th percentile near 0.60), while the loss is read once.
Setting that best against the loss favours the gradient. So a comparison reads the gradient two
ways that do not:

- **primary readings, named before looking**: for nuclear norm and effective rank, each sample's
  log metric (its mean over layers) averaged over the modules q, k, v and o that the runs hold: one
  number per sample and metric, read once, like the loss. Its separation (max(AUROC, 1 - AUROC),
  as for the loss) is set against the loss's on the same samples, and the difference gets a paired
  bootstrap interval: each resample draws samples within each group, the same draw for both
  readings, so what the two share cancels. The p is the bootstrap's two-sided tail at zero.
- **the best reading against its own null**: the best separation over the table's nuclear-norm
  and effective-rank readings, against the best over the same readings with the group labels
  shuffled (a max-statistic permutation null), so "the best of 8" is compared with the best of 8.

The four modules of one sample move together (their readings correlate strongly), so they are
averaged into one reading here and never counted as four pieces of evidence. Nothing here imports
torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from gradspec.analysis.beyond import auroc, separation

PRIMARY_METRICS = ("nuclear_norm", "effective_rank")
PRIMARY_MODULES = ("q", "k", "v", "o")


def _separations(values: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Separation of every column of ``values`` (samples x readings) between y == 0 and y == 1."""
    return np.array([separation(auroc(values[y == 0, j], values[y == 1, j])) for j in range(values.shape[1])])


def primary_scores(samples: pd.DataFrame, metric: str, modules: Sequence[str] = PRIMARY_MODULES) -> pd.Series:
    """Each sample's mean over ``modules`` of its log ``metric`` (mean over layers), indexed by
    (group, sample_id); samples missing a module or with a value <= 0 are left out."""
    d = samples[(samples.metric == metric) & samples.module.isin(modules)]
    wide = d.pivot_table(index=["group", "sample_id"], columns="module", values="value")
    wide = wide[wide.notna().all(axis=1) & (wide > 0).all(axis=1)]
    return np.log(wide).mean(axis=1)


def paired_separation_difference(
    score: np.ndarray, loss: np.ndarray, y: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float, float, float]:
    """(separation(score) - separation(loss), its 95% interval, two-sided p) by a bootstrap that
    resamples samples within each group, the same draw for both readings."""
    both = np.column_stack([score, loss])
    observed = _separations(both, y)
    diff = float(observed[0] - observed[1])
    rng = np.random.default_rng(seed)
    ia, ib = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    boots = np.empty(n_boot)
    for i in range(n_boot):
        idx = np.concatenate([rng.choice(ia, len(ia)), rng.choice(ib, len(ib))])
        s = _separations(both[idx], y[idx])
        boots[i] = s[0] - s[1]
    low, high = np.quantile(boots, [0.025, 0.975])
    ties = (boots == 0).mean() / 2  # a resample where both separate equally counts half to each side
    p = float(min(1.0, 2 * min((boots < 0).mean() + ties, (boots > 0).mean() + ties)))
    return diff, float(low), float(high), p


def best_of_null(values: np.ndarray, y: np.ndarray, n_perm: int, seed: int) -> tuple[int, float, float]:
    """(column of the best separation, that separation, permutation p): the best over the columns
    against the best over the same columns with ``y`` shuffled, ``n_perm`` times."""
    observed = _separations(values, y)
    best = int(np.nanargmax(observed))
    rng = np.random.default_rng(seed)
    null = np.array([np.nanmax(_separations(values, rng.permutation(y))) for _ in range(n_perm)])
    return best, float(observed[best]), float((1 + (null >= observed[best]).sum()) / (1 + n_perm))


def primary_table(
    a_label: str, b_label: str, samples: pd.DataFrame, covariates: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """One row per primary reading (see the module docstring), each with the loss's separation on the
    same samples, their difference with its interval and p, and the best-of-readings permutation test.

    ``samples``: group, sample_id, module, metric, value; ``covariates``: group, sample_id, loss."""
    loss = covariates.set_index(["group", "sample_id"])["loss"]
    readings = samples[samples.metric.isin(PRIMARY_METRICS) & samples.module.isin(PRIMARY_MODULES)]
    wide = readings.pivot_table(index=["group", "sample_id"], columns=["metric", "module"], values="value").dropna()
    best_name, best_sep, p_best = "", math.nan, math.nan
    if not wide.empty:
        y_all = (wide.index.get_level_values("group") == b_label).astype(float)
        if 0 < y_all.sum() < len(y_all):
            column, best_sep, p_best = best_of_null(wide.to_numpy(float), y_all, min(n_boot, 1000), seed)
            metric, module = wide.columns[column]
            best_name = f"{metric} of {module}"
    rows = []
    for metric in PRIMARY_METRICS:
        score = primary_scores(samples, metric)
        joined = pd.concat([score.rename("score"), loss.rename("loss")], axis=1, join="inner").dropna()
        y = (joined.index.get_level_values("group") == b_label).astype(float)
        if y.sum() < 2 or (1 - y).sum() < 2:
            continue
        s, lo = joined["score"].to_numpy(float), joined["loss"].to_numpy(float)
        diff, low, high, p = paired_separation_difference(s, lo, y, n_boot, seed)
        modules = sorted(set(readings[readings.metric == metric].module), key=PRIMARY_MODULES.index)
        rows.append(
            {
                "a": a_label,
                "b": b_label,
                "reading": f"log {metric}, mean of {', '.join(modules)}",
                "metric": metric,
                "n_a": int((1 - y).sum()),
                "n_b": int(y.sum()),
                "auroc": auroc(s[y == 0], s[y == 1]),
                "auroc_loss": auroc(lo[y == 0], lo[y == 1]),
                "separation_diff": diff,
                "separation_diff_low": low,
                "separation_diff_high": high,
                "p_vs_loss": p,
                "best_reading": best_name,
                "best_separation": best_sep,
                "p_best_vs_null": p_best,
                "n_readings": wide.shape[1],
                "n_boot": n_boot,
            }
        )
    return pd.DataFrame(rows)
