"""Length control: response length bounds effective rank (rank <= tokens) and scales the
mean loss, and high-quality splits are often many times longer than low ones. Two views that
take it out of a group difference: length-matched subsets, and a regression on log length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


def match_by_length(len_a: np.ndarray, len_b: np.ndarray, caliper: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Indices (ia, ib) of one-to-one pairs whose log lengths differ by at most ``caliper``.

    Greedy nearest-neighbour on log length, shortest first; each sample is used once.
    """
    la, lb = np.log(np.maximum(len_a, 1)), np.log(np.maximum(len_b, 1))
    free = np.ones(len(lb), dtype=bool)
    ia, ib = [], []
    for i in np.argsort(la, kind="stable"):
        if not free.any():
            break
        gaps = np.where(free, np.abs(lb - la[i]), np.inf)
        j = int(np.argmin(gaps))
        if gaps[j] <= caliper:
            ia.append(int(i))
            ib.append(j)
            free[j] = False
    return np.array(ia, dtype=int), np.array(ib, dtype=int)


@dataclass(frozen=True)
class Adjusted:
    """The group effect (b minus a) on a metric with log response length held fixed."""

    effect: float
    p: float
    length_slope: float


def regress_on_length(a: np.ndarray, b: np.ndarray, len_a: np.ndarray, len_b: np.ndarray) -> Adjusted:
    """OLS of value on [1, is_b, log length]; the is_b coefficient, its t-test p, the slope."""
    y = np.concatenate([a, b]).astype(float)
    x = np.column_stack(
        [np.ones(len(y)), np.r_[np.zeros(len(a)), np.ones(len(b))], np.log(np.maximum(np.r_[len_a, len_b], 1))]
    )
    ok = ~np.isnan(y)
    y, x = y[ok], x[ok]
    n, k = x.shape
    if n <= k or np.linalg.matrix_rank(x) < k:
        return Adjusted(math.nan, math.nan, math.nan)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    sigma2 = resid @ resid / (n - k)
    se = math.sqrt(sigma2 * np.linalg.inv(x.T @ x)[1, 1])
    if se == 0:
        return Adjusted(float(beta[1]), math.nan, float(beta[2]))
    return Adjusted(float(beta[1]), float(2 * sps.t.sf(abs(beta[1] / se), n - k)), float(beta[2]))


ONE_WINDOW = "equal length: one window"
MATCHED_PAIRS = "equal length: matched pairs"
NATURAL = "natural length"


def length_design(len_a: np.ndarray, len_b: np.ndarray) -> str:
    """How two groups' response lengths were made comparable.

    ``ONE_WINDOW``: every sample of both groups has the same length (runs at one response window);
    the groups are independent samples, compared unpaired. ``MATCHED_PAIRS``: the same lengths
    token for token, as a truncation-matched selection makes them; compared pair by pair, each
    pair of one length. ``NATURAL``: anything else.
    """
    both = np.concatenate([np.asarray(len_a), np.asarray(len_b)])
    if len(len_a) and len(len_b) and np.all(both == both[0]):
        return ONE_WINDOW
    if len(len_a) == len(len_b) and bool(np.array_equal(np.sort(len_a), np.sort(len_b))):
        return MATCHED_PAIRS
    return NATURAL


def equal_length(design: object) -> bool:
    """Whether a comparison's ``design`` holds length fixed by construction."""
    return isinstance(design, str) and design.startswith("equal length")


SMALLER = "smaller than the margin"
"""A significant difference whose 90% interval lies within the smallest effect of interest: real,
and too small to act on (equivalent to zero at that margin)."""


def design_verdict(
    q: float, diff: float, raw_q: float | None = None, raw_diff: float | None = None, equivalent: bool = False
) -> str:
    """Plain words for a difference measured at equal length by design, against the same groups at
    their natural lengths (``raw_*``, from a reference comparison) when there is one. A difference
    that is not significant is "equivalent to zero" only when ``equivalent`` (its 90% interval lies
    within the smallest effect of interest); otherwise it is "inconclusive", never "none". A
    significant difference whose 90% interval lies within that margin is "smaller than the margin",
    never "holds": a label may not say more than its interval does."""
    if math.isnan(q):
        return "equal length by design: not tested"
    here = q < 0.05
    if here and equivalent:
        return f"equal length by design: {SMALLER}"
    null = "equivalent to zero" if equivalent else "inconclusive"
    if raw_q is None or raw_diff is None or math.isnan(raw_q):
        if not here:
            return f"equal length by design: {null}"
        return f"equal length by design: B {'higher' if diff > 0 else 'lower'}"
    before = raw_q < 0.05
    if before and here:
        return (
            "equal length by design: holds"
            if np.sign(diff) == np.sign(raw_diff)
            else "equal length by design: reverses"
        )
    if before:
        return "equal length by design: disappears" if equivalent else "equal length by design: inconclusive"
    return "equal length by design: appears" if here else f"equal length by design: {null}"


def verdict(q_raw: float, diff_raw: float, p_controlled: float, diff_controlled: float, alpha: float = 0.05) -> str:
    """Plain words for what length control does to a difference."""
    if math.isnan(q_raw):
        return "not tested"
    if q_raw >= alpha:
        if not math.isnan(p_controlled) and p_controlled < alpha:
            return "appears under length control"
        return "no difference"
    if math.isnan(p_controlled):
        return "difference (length control not possible)"
    if p_controlled >= alpha:
        return "disappears under length control"
    if np.sign(diff_controlled) != np.sign(diff_raw):
        return "reverses under length control"
    return "holds under length control"
