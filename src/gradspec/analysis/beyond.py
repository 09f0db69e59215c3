"""What a gradient metric says about two groups beyond what the sample's loss and lengths say.

A curator can compute a sample's loss, its response length T and its prompt length P without
gradspec, and each of them alone can tell groups apart (the loss separates correct from shuffled
chains of thought almost perfectly). So for every metric and module of a comparison this reads:

- **AUROC**, P(a sample of B scores higher than one of A), with a bootstrap interval, for the
  metric (a sample's mean over layers) and, beside it, for the loss, T and P alone. 0.5 is no
  separation; 0 or 1 is perfect, in either direction.
- **Incremental value**: a likelihood-ratio test of a logistic model of the group on log loss,
  log T and log P, with and without the metric. We use the nested-model test rather than the
  difference of cross-validated AUROCs: with a hundred or so samples a group, a cross-validated
  AUROC difference moves by several points from split to split and has no reference
  distribution without a second, nested resampling, while the likelihood-ratio statistic of one
  added coefficient is chi-square with one degree of freedom under "the metric adds nothing".
  Covariates that do not vary (T at one response window, P at fixed prompt tokens) drop out, as
  the design already holds them fixed. A tiny ridge penalty keeps the fit finite when the
  covariates alone separate the groups perfectly (the test then has nothing left to find).
- **The adjusted difference**: the group coefficient of a least-squares fit of the metric on the
  group, log loss, log T and log P, with its 95% interval: B minus A at equal loss and lengths.

Nothing here imports torch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import expit

from gradspec.analysis.stats import fdr

RIDGE = 1e-4
"""Penalty on the standardised logistic coefficients (not the intercept): finite fits under separation."""
COVARIATES = ("log_loss", "log_response_tokens", "log_prompt_tokens")
"""What a curator has without gradients, on the log scale the gradient's scale follows."""


def auroc(a: np.ndarray, b: np.ndarray) -> float:
    """P(b > a) + P(b = a) / 2 over every pair: the Mann-Whitney U of b over its maximum."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if not len(a) or not len(b):
        return math.nan
    ranks = sps.rankdata(np.concatenate([a, b]))
    u = ranks[len(a) :].sum() - len(b) * (len(b) + 1) / 2
    return float(u / (len(a) * len(b)))


def auroc_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """AUROC of b over a with a percentile interval resampling each group."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    point = auroc(a, b)
    if len(a) < 2 or len(b) < 2:
        return point, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boots = [auroc(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))]) for _ in range(n_boot)]
    low, high = np.nanquantile(boots, [0.025, 0.975])
    return point, float(low), float(high)


def _standardised(x: np.ndarray) -> np.ndarray:
    """Columns with spread, centred and scaled; constant columns dropped. "Constant" is decided
    exactly (max equal to min): the standard deviation of equal values can come out as one unit of
    round-off, and such a column, scaled, is the intercept again."""
    keep = [j for j in range(x.shape[1]) if np.nanmax(x[:, j]) > np.nanmin(x[:, j])]
    x = x[:, keep]
    return (x - x.mean(axis=0)) / x.std(axis=0) if keep else x


def logistic_loglik(x: np.ndarray, y: np.ndarray, ridge: float = RIDGE) -> float:
    """Maximised log-likelihood of y (0/1) on an intercept and ``x`` (Newton steps, ridge on slopes)."""
    design = np.column_stack([np.ones(len(y)), x])
    beta = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], ridge * len(y))
    penalty[0] = 0.0
    for _ in range(100):
        eta = design @ beta
        p = expit(eta)
        grad = design.T @ (y - p) - penalty * beta
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hess + 1e-12 * np.eye(len(beta)), grad)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    eta = design @ beta
    return float(np.sum(y * eta - np.logaddexp(0, eta)))


def incremental_p(metric: np.ndarray, covariates: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(likelihood-ratio statistic, p) of adding ``metric`` to a logistic model of ``y`` on ``covariates``."""
    base = _standardised(covariates)
    full = _standardised(np.column_stack([covariates, metric]))
    if full.shape[1] == base.shape[1]:  # the metric does not vary
        return 0.0, 1.0
    stat = max(0.0, 2 * (logistic_loglik(full, y) - logistic_loglik(base, y)))
    return stat, float(sps.chi2.sf(stat, 1))


def adjusted_difference(metric: np.ndarray, covariates: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """(B minus A at equal covariates, its 95% interval low and high, two-sided p) by least squares."""
    design = np.column_stack([np.ones(len(y)), y, _standardised(covariates)])
    n, k = design.shape
    if n <= k + 1 or np.linalg.matrix_rank(design) < k:
        return (math.nan,) * 4
    beta, *_ = np.linalg.lstsq(design, metric, rcond=None)
    resid = metric - design @ beta
    se = math.sqrt(resid @ resid / (n - k) * np.linalg.inv(design.T @ design)[1, 1])
    if se == 0:
        return float(beta[1]), float(beta[1]), float(beta[1]), math.nan
    t = sps.t.ppf(0.975, n - k)
    return (
        float(beta[1]),
        float(beta[1] - t * se),
        float(beta[1] + t * se),
        float(2 * sps.t.sf(abs(beta[1] / se), n - k)),
    )


def beyond_table(
    a_label: str, b_label: str, samples: pd.DataFrame, covariates: pd.DataFrame, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per metric and module, what the metric adds to loss and lengths in telling B from A.

    ``samples``: group, sample_id, module, metric, value (each sample's mean over layers);
    ``covariates``: sample_id, group, loss, n_response_tokens, n_prompt_tokens.
    """
    cov = covariates.assign(
        log_loss=np.log(covariates["loss"].clip(lower=1e-12)),
        log_response_tokens=np.log(covariates["n_response_tokens"].clip(lower=1)),
        log_prompt_tokens=np.log(covariates["n_prompt_tokens"].fillna(1).clip(lower=1)),
    )  # a sample may be in both groups (one data file under two models): keyed by group and id
    alone = {}
    for name, column in (
        ("loss", "loss"),
        ("response_tokens", "n_response_tokens"),
        ("prompt_tokens", "n_prompt_tokens"),
    ):
        va = cov.loc[cov.group == a_label, column].to_numpy(float)
        vb = cov.loc[cov.group == b_label, column].to_numpy(float)
        alone[name] = auroc_ci(va, vb, n_boot, seed)
    rows = []
    for (metric, module), d in samples.groupby(["metric", "module"]):
        d = d.merge(cov[["group", "sample_id", *COVARIATES]], on=["group", "sample_id"])
        y = (d["group"] == b_label).to_numpy(float)
        if y.sum() < 2 or (1 - y).sum() < 2:
            continue
        value = d["value"].to_numpy(float)
        x = d[list(COVARIATES)].to_numpy(float)
        auc, low, high = auroc_ci(value[y == 0], value[y == 1], n_boot, seed)
        stat, p = incremental_p(value, x, y)
        adj, adj_low, adj_high, p_adj = adjusted_difference(value, x, y)
        row = {
            "a": a_label,
            "b": b_label,
            "metric": metric,
            "module": module,
            "n_a": int((1 - y).sum()),
            "n_b": int(y.sum()),
            "auroc": auc,
            "auroc_low": low,
            "auroc_high": high,
        }
        for name, (v, lo, hi) in alone.items():
            row |= {f"auroc_{name}": v, f"auroc_{name}_low": lo, f"auroc_{name}_high": hi}
        row |= {
            "lr_stat": stat,
            "p_beyond": p,
            "adjusted_diff": adj,
            "adjusted_ci_low": adj_low,
            "adjusted_ci_high": adj_high,
            "p_adjusted": p_adj,
        }
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["q_beyond"] = fdr(table["p_beyond"].to_numpy())
    return table


def separation(auc: float) -> float:
    """How well a score tells two groups apart, whichever way: max(AUROC, 1 - AUROC)."""
    return max(auc, 1 - auc) if not math.isnan(auc) else math.nan
