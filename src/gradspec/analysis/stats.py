"""Statistics for group comparisons: bootstrap intervals, rank tests, effect sizes, FDR.

Tests are two-sided Mann-Whitney U (no normality assumed); effect sizes are Cliff's delta
(P(a > b) - P(a < b), from U) and Cohen's d (pooled SD); p-values are adjusted by
Benjamini-Hochberg within a family stated by the caller.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats as sps


def _percentile_interval(boots: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile bounds over the bootstrap axis (0)."""
    alpha = (1 - level) / 2
    return np.nanquantile(boots, alpha, axis=0), np.nanquantile(boots, 1 - alpha, axis=0)


def bootstrap_mean_ci(
    values: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and percentile interval of the mean for each column of an (n, C) array (NaN ignored)."""
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[:, None]
    mean = _nanmean(values, axis=0)
    n = values.shape[0]
    if n < 2:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    boots = _nanmean(values[idx], axis=1)  # (n_boot, C)
    return mean, *_percentile_interval(boots, level)


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean``, NaN without a warning where a column has no value: a column can be undefined for
    some samples (the run's probe has no probe cosine), and a resample may draw only those."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def bootstrap_diff_ci(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean(b) - mean(a) per column, with a percentile interval resampling each group."""
    a, b = (np.asarray(v, dtype=float).reshape(len(v), -1) for v in (a, b))
    diff = _nanmean(b, axis=0) - _nanmean(a, axis=0)
    if len(a) < 2 or len(b) < 2:
        return diff, np.full_like(diff, np.nan), np.full_like(diff, np.nan)
    rng = np.random.default_rng(seed)
    ia, ib = rng.integers(0, len(a), (n_boot, len(a))), rng.integers(0, len(b), (n_boot, len(b)))
    boots = _nanmean(b[ib], axis=1) - _nanmean(a[ia], axis=1)
    return diff, *_percentile_interval(boots, level)


def wilcoxon_paired(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float, float]:
    """(mean of b - a over pairs, its percentile interval low and high, two-sided Wilcoxon
    signed-rank p); NaN when fewer than two pairs are defined, p = 1 when every pair is tied."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = (b - a)[~(np.isnan(a) | np.isnan(b))]
    if len(d) < 2:
        return (float(d.mean()) if len(d) else math.nan), math.nan, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(d), (n_boot, len(d)))
    low, high = _percentile_interval(d[idx].mean(axis=1), 0.95)
    p = 1.0 if not np.any(d) else float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return float(d.mean()), float(low), float(high), p


def mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(two-sided p, Cliff's delta of b over a); NaN when a group has no values or all are tied."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0, 0.0
    res = sps.mannwhitneyu(b, a, alternative="two-sided")
    return float(res.pvalue), float(2 * res.statistic / (len(a) * len(b)) - 1)


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    """(mean(b) - mean(a)) / pooled SD."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return math.nan
    pooled = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)
    return float((b.mean() - a.mean()) / math.sqrt(pooled)) if pooled > 0 else math.nan


def fdr(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values; NaN p-values stay NaN and do not count."""
    p = np.asarray(pvalues, dtype=float)
    q = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = sps.false_discovery_control(p[ok], method="bh")
    return q


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """(rho, p, n) over pairs where both are defined."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    n = int(ok.sum())
    if n < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return math.nan, math.nan, n
    res = sps.spearmanr(x[ok], y[ok])
    return float(res.statistic), float(res.pvalue), n


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float, int]:
    """Spearman correlation of x and y with z partialled out (ranks residualised on z's ranks)."""
    x, y, z = (np.asarray(v, float) for v in (x, y, z))
    ok = ~(np.isnan(x) | np.isnan(y) | np.isnan(z))
    n = int(ok.sum())
    if n < 4:
        return math.nan, math.nan, n
    rx, ry, rz = (sps.rankdata(v[ok]) for v in (x, y, z))
    design = np.column_stack([np.ones(n), rz])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    if np.ptp(res_x) <= 1e-9 * n or np.ptp(res_y) <= 1e-9 * n:  # z explains x or y entirely
        return math.nan, math.nan, n
    r = float(np.corrcoef(res_x, res_y)[0, 1])
    t = r * math.sqrt((n - 3) / max(1e-300, 1 - r * r))
    return r, float(2 * sps.t.sf(abs(t), n - 3)), n
