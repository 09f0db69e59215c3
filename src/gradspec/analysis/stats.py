"""Statistics for group comparisons: bootstrap intervals, tests, effect sizes, FDR.

One estimand per reading: a difference of means is tested by Welch's t test (independent
groups) or the one-sample t test of paired differences (pairs), and shown with a bootstrap
interval of that same difference; the rank reading (Mann-Whitney U with Cliff's delta,
P(b > a) - P(b < a)) is its own column, never the test of a mean. Cohen's d uses the pooled
SD; p-values are adjusted by Benjamini-Hochberg within a family stated by the caller.
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


def _paired_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b - a over the pairs where both are defined."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return (b - a)[~(np.isnan(a) | np.isnan(b))]


def _mean_interval(d: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    idx = np.random.default_rng(seed).integers(0, len(d), (n_boot, len(d)))
    low, high = _percentile_interval(d[idx].mean(axis=1), 0.95)
    return float(low), float(high)


def wilcoxon_paired(
    a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float, float]:
    """(mean of b - a over pairs, its percentile interval low and high, two-sided Wilcoxon
    signed-rank p); NaN when fewer than two pairs are defined, p = 1 when every pair is tied."""
    d = _paired_differences(a, b)
    if len(d) < 2:
        return (float(d.mean()) if len(d) else math.nan), math.nan, math.nan, math.nan
    p = 1.0 if not np.any(d) else float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    return float(d.mean()), *_mean_interval(d, n_boot, seed), p


def paired_means(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float, float]:
    """(mean of b - a over pairs, its percentile interval low and high, two-sided p of the
    one-sample t test of those differences: the test of the mean the interval describes); NaN
    when fewer than two pairs are defined, p = 1 when every difference is the same zero."""
    d = _paired_differences(a, b)
    if len(d) < 2:
        return (float(d.mean()) if len(d) else math.nan), math.nan, math.nan, math.nan
    if np.ptp(d) == 0:  # no spread: t is undefined; a constant difference is certain unless it is 0
        return float(d.mean()), float(d[0]), float(d[0]), 1.0 if d[0] == 0 else 0.0
    return float(d.mean()), *_mean_interval(d, n_boot, seed), float(sps.ttest_1samp(d, 0.0).pvalue)


def welch(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of Welch's t test of mean(b) - mean(a) (unequal variances): the test of the
    difference of means that ``bootstrap_diff_ci`` gives an interval for. NaN below two values a
    group; with no spread in either group, 1 when the means agree and 0 when they differ."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a[0] == b[0] else 0.0
    with warnings.catch_warnings():  # one constant group: scipy warns of its moments, the test stands
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(sps.ttest_ind(b, a, equal_var=False).pvalue)


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
    """Spearman correlation of x and y with z partialled out (ranks residualised on z's ranks); ``z``
    one covariate, or several as the columns of a 2-D array (a constant column drops out)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    z = np.asarray(z, float).reshape(len(x), -1)
    ok = ~(np.isnan(x) | np.isnan(y) | np.isnan(z).any(axis=1))
    n = int(ok.sum())
    if n < 3 + z.shape[1]:
        return math.nan, math.nan, n
    rx, ry = sps.rankdata(x[ok]), sps.rankdata(y[ok])
    design = np.column_stack([np.ones(n), *(sps.rankdata(column) for column in z[ok].T)])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    if np.ptp(res_x) <= 1e-9 * n or np.ptp(res_y) <= 1e-9 * n:  # z explains x or y entirely
        return math.nan, math.nan, n
    r = float(np.corrcoef(res_x, res_y)[0, 1])
    dof = n - 1 - int(np.linalg.matrix_rank(design))  # n - 2 with one covariate that varies
    t = r * math.sqrt(dof / max(1e-300, 1 - r * r))
    return r, float(2 * sps.t.sf(abs(t), dof)), n
