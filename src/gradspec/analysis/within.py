"""Blocked designs: many answers to one prompt, read within each prompt.

A natural pool (every model's answer to the same prompts) mixes two sources of spread: prompts
differ (some are hard, some invite long answers), and answers to one prompt differ in quality.
A correlation over all records confounds them, and treats the records of one block as independent
when they share a prompt. ``correlate --within FIELD`` reads each block alone (the records sharing
FIELD, e.g. ``prompt_id``): for each block the Spearman correlation of a metric with a quality
field (e.g. ``generator_lc_winrate``), then their mean over blocks, with a percentile bootstrap
interval that resamples blocks (the blocks are the independent units) and a Wilcoxon signed-rank
test of the blocks' correlations against zero. Beside the gradient metrics, the same reading of
the sample's loss and response length, which a curator has without gradients; and for each
gradient metric the same reading *beyond* them: per block the partial Spearman rho with the
sample's loss and response length partialled out (``*_beyond`` columns; a length that does not
vary within a block, as at one response window, drops out by itself).

Nothing here imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from gradspec.analysis.stats import fdr, partial_spearman

MIN_BLOCK = 3
"""Records a block needs for a correlation within it (two points always correlate perfectly)."""


def block_rhos(frame: pd.DataFrame, block: str, x: str, y: str, covariates: Sequence[str] = ()) -> np.ndarray:
    """Spearman rho of ``x`` with ``y`` within each block of at least ``MIN_BLOCK`` records (one more per
    covariate) where both vary, with ``covariates`` partialled out when given (a block where the partial
    rho is undefined, the covariates explaining x or y entirely, is left out)."""
    out = []
    for _, d in frame[[block, x, y, *covariates]].dropna().groupby(block):
        if len(d) < MIN_BLOCK + len(covariates) or d[x].nunique() < 2 or d[y].nunique() < 2:
            continue  # two points always correlate perfectly; a constant has no correlation to give
        if not covariates:
            out.append(sps.spearmanr(d[x], d[y]).statistic)
            continue
        rho = partial_spearman(d[x].to_numpy(), d[y].to_numpy(), d[list(covariates)].to_numpy())[0]
        if not math.isnan(rho):
            out.append(rho)
    return np.asarray(out, dtype=float)


def mean_over_blocks(rhos: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float, float]:
    """(mean rho, its 95% interval resampling blocks, Wilcoxon signed-rank p of rho against 0)."""
    if len(rhos) < 2:
        return (float(rhos.mean()) if len(rhos) else math.nan), math.nan, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(0, len(rhos), (n_boot, len(rhos)))
    low, high = np.quantile(rhos[idx].mean(axis=1), [0.025, 0.975])
    p = float(sps.wilcoxon(rhos).pvalue) if np.any(rhos) else 1.0
    return float(rhos.mean()), float(low), float(high), p


def within_table(
    samples: pd.DataFrame,
    block: str,
    quality: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    covariates: Sequence[str] = (),
) -> pd.DataFrame:
    """Per reading (a gradient metric of a module, the loss, the response length) and quality field:
    blocks read, their mean within-block Spearman rho with its interval and p, the share of blocks
    with rho > 0; FDR over every row.

    ``samples``: one row per sample and reading, columns ``block``, the quality fields, ``reading``,
    ``module`` and ``value``, and the ``covariates`` (per sample) that the ``*_beyond`` columns
    partial out of every reading but themselves."""
    rows = []
    for (reading, module), d in samples.groupby(["reading", "module"], sort=False):
        for q in quality:
            rhos = block_rhos(d, block, "value", q)
            mean, low, high, p = mean_over_blocks(rhos, n_boot, seed)
            row = {
                "quality": q,
                "reading": reading,
                "module": module,
                "blocks": len(rhos),
                "mean_rho": mean,
                "ci_low": low,
                "ci_high": high,
                "p": p,
                "share_positive": float((rhos > 0).mean()) if len(rhos) else math.nan,
            }
            if covariates and reading not in covariates:
                partial = block_rhos(d, block, "value", q, covariates)
                beyond = dict(
                    zip(
                        ("mean_rho_beyond", "ci_low_beyond", "ci_high_beyond", "p_beyond"),
                        mean_over_blocks(partial, n_boot, seed),
                    )
                )
                row |= beyond | {"blocks_beyond": len(partial)}
            rows.append(row)
    table = pd.DataFrame(rows)
    if not table.empty:
        table["q_value"] = fdr(table["p"].to_numpy())
        if "p_beyond" in table:
            table["q_beyond"] = fdr(table["p_beyond"].to_numpy())
    return table
