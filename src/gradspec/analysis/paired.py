"""Paired comparisons: A and B answer the same prompts, so each prompt is its own control.

Most of the papers' comparisons are of this kind (the same questions answered fast or slow,
correctly or with shuffled reasoning, by a strong or a weak model). Tested as independent groups,
the prompt-to-prompt spread, which is usually the largest, hides a difference the pairs show.
``compare --pair-by KEY`` joins A's and B's samples on a key: ``prompt`` (the record's prompt
turns, hashed: what the model was asked, whatever template renders it), ``index`` (the record's
place in its file; when a group pools several runs, the run's place in the group too, so the i-th
run of A pairs with the i-th of B: both groups must pool as many runs) or any record field
(``prompt_id``). A pair is kept only when both sides were
computed: a side skipped (a response shorter than the window, an error) drops its pair whole, and
the count says so, so a window can never make the two sides hold different prompts unnoticed.

Per metric and module (each sample's mean over layers), on the differences d = B - A:

- **one estimand, one test**: the median paired difference, with a bootstrap interval over pairs,
  tested by the sign test (is the median of d zero?); ``share_b_higher`` is the share of pairs
  with d > 0, the same estimand read as a share. The Wilcoxon signed-rank p (a test of the
  pseudo-median, more powerful under symmetry) stands beside it, not in the sentence.
- **paired AUROC**: P(B's side is higher within a pair), ties counted half.
- **equivalence**: the 90% interval of the median difference against the smallest effect of
  interest (``sesoi`` times A's mean over the pairs), as in ``compare``.
- **beyond loss and length, within pairs**: conditional logistic regression of the side on the
  within-pair differences of log loss, log T and log P, with and without the metric's difference,
  compared by a likelihood-ratio test. For 1:1 matched pairs the conditional likelihood is that of
  a logistic model without intercept on the differences, Π σ(β·(x_B - x_A)); everything a pair
  shares (its prompt, its topic, its difficulty) cancels, and a covariate that does not differ
  within pairs (P when the prompts are the same, T at one window) drops out by itself. We prefer
  it to comparing AUROCs: it asks the question directly (does the metric tell the sides apart at
  equal loss and lengths?) and its statistic is chi-square with one degree of freedom.

Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import expit

from gradspec.analysis.beyond import RIDGE
from gradspec.analysis.groups import Group
from gradspec.analysis.sources import data_path, sources_of
from gradspec.analysis.stats import fdr
from gradspec.errors import InputError

BUILT_IN_KEYS = ("prompt", "index")
"""Keys every run has; any other ``--pair-by`` value is a record field."""
ALPHA = 0.05


def prompt_key(messages: Sequence[Any]) -> str:
    """A prompt's identity: its turns (role and text), hashed; the template does not enter it."""
    turns = [[m.role, m.content] for m in messages]
    return hashlib.sha256(json.dumps(turns, ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()[:20]


def group_keys(group: Group, by: str) -> pd.DataFrame:
    """sample_id (as the group names it), status and pairing key of every sample of the group's runs;
    the key is None where the record has none (a field it lacks, a record no longer in its file)."""
    frames = []
    for i, run in enumerate(group.runs):
        prefix = f"{i}:" if len(group.runs) > 1 else ""
        samples = run.df("samples")[["sample_id", "index", "status"]]
        if by == "index":  # a place in a pooled group is the run's place and the record's
            keys = samples["index"].map(lambda v, p=prefix: f"{p}{int(v)}")
        else:
            sources = sources_of(run)
            if not sources:
                raise InputError(
                    f"--pair-by {by}: the data file of {run.path} ({data_path(run)}) cannot be read (moved or "
                    "changed?); pair by index, or put the file back"
                )
            if by != "prompt" and not any(isinstance(row, dict) and by in row for _, row in sources.values()):
                raise InputError(f"--pair-by {by}: no record of {data_path(run)} has a field {by!r}")
            keys = samples["sample_id"].map(lambda sid, s=sources: _key(s.get(sid), by))
        frames.append(
            pd.DataFrame({"sample_id": prefix + samples["sample_id"], "status": samples["status"], "key": keys})
        )
    return pd.concat(frames, ignore_index=True)


def _key(found: tuple[Any, Any] | None, by: str) -> str | None:
    if found is None:
        return None
    record, row = found
    if by == "prompt":
        return prompt_key(record.messages)
    value = row.get(by) if isinstance(row, dict) else None
    return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def pairs_of(a: Group, b: Group, by: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The pairs both sides computed (key, sample_id_a, sample_id_b), and the counts a reader needs:
    keys on both sides, pairs dropped because a side was not computed, keys on one side only, and
    keys that repeat within a side (ambiguous, left out)."""
    if by == "index" and len(a.runs) != len(b.runs):
        raise InputError(
            f"--pair-by index: {a.label} pools {len(a.runs)} run(s) and {b.label} {len(b.runs)}; index pairs the i-th "
            "record of the i-th run on each side, so both must pool as many runs (or pair by prompt or a field)"
        )
    ka, kb = group_keys(a, by).dropna(subset=["key"]), group_keys(b, by).dropna(subset=["key"])
    repeated = set(ka.key[ka.key.duplicated()]) | set(kb.key[kb.key.duplicated()])
    ka, kb = ka[~ka.key.isin(repeated)], kb[~kb.key.isin(repeated)]
    both = ka.merge(kb, on="key", suffixes=("_a", "_b"))
    ok = both[(both.status_a == "ok") & (both.status_b == "ok")]
    counts = {
        "keys_on_both_sides": len(both),
        "dropped_pairs": len(both) - len(ok),
        "only_a": int((~ka.key.isin(kb.key)).sum()),
        "only_b": int((~kb.key.isin(ka.key)).sum()),
        "repeated_keys": len(repeated),
    }
    return ok[["key", "sample_id_a", "sample_id_b"]].reset_index(drop=True), counts


def conditional_loglik(d: np.ndarray, ridge: float = RIDGE) -> float:
    """Maximised conditional log-likelihood of 1:1 matched pairs, sum of log σ(β·d) over the rows of
    ``d`` (B's covariates minus A's), by Newton steps with a small ridge (finite under separation).
    Columns are scaled by their root mean square, not centred: the mean of d is the signal."""
    if d.shape[1] == 0:
        return float(len(d) * math.log(0.5))
    beta = np.zeros(d.shape[1])
    penalty = ridge * len(d)
    for _ in range(100):
        p = expit(d @ beta)
        grad = d.T @ (1 - p) - penalty * beta
        hess = (d * (p * (1 - p))[:, None]).T @ d + penalty * np.eye(len(beta))
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(-np.logaddexp(0, -(d @ beta)).sum())


def _scaled(d: np.ndarray) -> np.ndarray:
    """Columns that differ within some pair, each over its root mean square; the others dropped."""
    keep = [j for j in range(d.shape[1]) if np.any(d[:, j] != 0)]
    d = d[:, keep]
    return d / np.sqrt((d**2).mean(axis=0)) if keep else d


def matched_beyond(metric: np.ndarray, covariates: np.ndarray) -> tuple[float, float]:
    """(likelihood-ratio statistic, p) of adding the metric's within-pair difference to a conditional
    logistic model of the side on the covariates' differences (rows: pairs, B minus A)."""
    base = _scaled(covariates)
    full = _scaled(np.column_stack([covariates, metric]))
    if full.shape[1] == base.shape[1]:  # the metric never differs within a pair
        return 0.0, 1.0
    stat = max(0.0, 2 * (conditional_loglik(full) - conditional_loglik(base)))
    return stat, float(sps.chi2.sf(stat, 1))


def median_ci(d: np.ndarray, n_boot: int, seed: int, level: float) -> tuple[float, float]:
    """Percentile interval of the median of ``d`` over bootstrap resamples of the pairs."""
    if len(d) < 2:
        return math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(d), (n_boot, len(d)))
    boots = np.median(d[idx], axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(boots, alpha)), float(np.quantile(boots, 1 - alpha))


def paired_label(q: float, equivalent: bool, median: float) -> str:
    """Words that say no more than the interval: a significant difference inside the margin is
    "smaller than the margin", a non-significant one inside it "equivalent to zero"."""
    if math.isnan(q):
        return "not tested"
    if q < ALPHA:
        return "smaller than the margin" if equivalent else ("B higher" if median > 0 else "B lower")
    return "equivalent to zero" if equivalent else "inconclusive"


def paired_table(
    a: Group, b: Group, by: str, sesoi: float, n_boot: int, seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per metric and module the paired reading of B against A (see the module docstring), with the
    pair counts in every row."""
    pairs, counts = pairs_of(a, b, by)
    table = paired_rows(a, b, pairs, sesoi, n_boot, seed)
    if not table.empty:
        table.insert(2, "pair_by", by)
        for name, n in counts.items():
            table[name] = n
    return table, counts


def paired_rows(a: Group, b: Group, pairs: pd.DataFrame, sesoi: float, n_boot: int, seed: int) -> pd.DataFrame:
    """The paired statistics of ``pairs`` (sample_id_a, sample_id_b) per metric and module; FDR over the
    sign tests, and over the beyond tests, of every metric and module of this pair of groups."""

    def logs(group: Group, ids: pd.Series) -> np.ndarray:  # each side's own (one file under two models shares ids)
        sizes = group.sizes.set_index("sample_id")[["loss", "n_response_tokens", "n_prompt_tokens"]]
        return np.log(sizes.astype(float).clip(lower=1e-12)).loc[ids].to_numpy()

    cov = logs(b, pairs.sample_id_b) - logs(a, pairs.sample_id_a)
    rows = []
    for (metric, module), sa in a.samples.groupby(["metric", "module"]):
        sb = b.samples[(b.samples.metric == metric) & (b.samples.module == module)]
        va = pairs.sample_id_a.map(sa.set_index("sample_id")["value"]).to_numpy(float)
        vb = pairs.sample_id_b.map(sb.set_index("sample_id")["value"]).to_numpy(float)
        defined = ~(np.isnan(va) | np.isnan(vb))
        va, vb, c = va[defined], vb[defined], cov[defined]
        d = vb - va
        if len(d) < 2:
            continue
        wins, losses = int((d > 0).sum()), int((d < 0).sum())
        p_sign = float(sps.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else 1.0
        p_wilcoxon = float(sps.wilcoxon(d).pvalue) if np.any(d) else 1.0
        median = float(np.median(d))
        low, high = median_ci(d, n_boot, seed, 0.95)
        low90, high90 = median_ci(d, n_boot, seed, 0.90)
        margin = sesoi * abs(float(va.mean()))
        equivalent = bool(margin > 0 and -margin < low90 and high90 < margin)
        stat, p_beyond = matched_beyond(d, c)
        rows.append(
            {
                "a": a.label,
                "b": b.label,
                "metric": metric,
                "module": module,
                "n_pairs": len(d),
                "mean_a": float(va.mean()),
                "mean_b": float(vb.mean()),
                "median_diff": median,
                "rel_median_diff": median / abs(float(va.mean())) if va.mean() else math.nan,
                "ci_low": low,
                "ci_high": high,
                "ci90_low": low90,
                "ci90_high": high90,
                "sesoi": margin,
                "equivalent": equivalent,
                "share_b_higher": wins / len(d),
                "auroc_paired": (wins + 0.5 * (len(d) - wins - losses)) / len(d),
                "p_sign": p_sign,
                "p_wilcoxon": p_wilcoxon,
                "lr_beyond": stat,
                "p_beyond": p_beyond,
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["q_value"] = fdr(table["p_sign"].to_numpy())
    table["q_beyond"] = fdr(table["p_beyond"].to_numpy())
    table["label"] = [paired_label(r.q_value, r.equivalent, r.median_diff) for r in table.itertuples()]
    return table


def paired_warnings(a: str, b: str, by: str, counts: dict[str, int]) -> list[str]:
    """What the pairing left out, one line each, so nothing is dropped unsaid."""
    out = []
    if counts["dropped_pairs"]:
        out.append(
            f"paired by {by}: {counts['dropped_pairs']} of {counts['keys_on_both_sides']} pairs of {a} and {b} dropped "
            "whole because a side was not computed (skipped or failed)"
        )
    if counts["only_a"] or counts["only_b"]:
        out.append(f"paired by {by}: {counts['only_a']} sample(s) of {a} and {counts['only_b']} of {b} have no partner")
    if counts["repeated_keys"]:
        out.append(f"paired by {by}: {counts['repeated_keys']} key(s) repeat within a side and were left out")
    return out
