"""``grad_quality``: a per-sample score built from the gradients alone, with length taken out.

    grad_quality = mean over modules of (z(log effective rank) - z(log nuclear norm)) / 2

where each term is the residual of a regression on log response tokens across the run's
samples, divided by its SD. High values mean a higher effective rank and a lower nuclear norm
than the sample's length predicts: the direction the papers associate with better data. It
is relative to the run it is computed on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradspec.analysis.frames import long_frame, per_sample, sample_sizes
from gradspec.errors import ConfigError
from gradspec.store.query import Run

QUALITY_MODULES = ("q", "k", "v", "o")


def _length_residual_z(values: np.ndarray, log_length: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(values)), log_length])
    ok = ~np.isnan(values)
    out = np.full(len(values), np.nan)
    if ok.sum() < 3:
        return out
    beta, *_ = np.linalg.lstsq(design[ok], values[ok], rcond=None)
    resid = values[ok] - design[ok] @ beta
    sd = resid.std(ddof=1)
    out[ok] = resid / sd if sd > 0 else 0.0
    return out


def _mean_over_modules(zs: list[np.ndarray]) -> np.ndarray:
    """Mean of the defined z-scores per sample; NaN (not a warning) where none is defined, as in a
    run too small for a length fit."""
    stacked = np.vstack(zs)
    defined = np.isfinite(stacked)
    count = defined.sum(axis=0)
    total = np.where(defined, stacked, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)


def grad_quality(run: Run) -> pd.DataFrame:
    """Per ok sample: grad_quality (see the module docstring), its two halves
    (``grad_quality_rank``: the mean length-adjusted z of log effective rank; ``grad_quality_norm``:
    that of log nuclear norm), each module's two z-scores (``erank_z_q``, ``nuclear_z_q``, ...),
    the sample's mean nuclear norm and effective rank over layers and modules, and its tokens."""
    frame = per_sample(long_frame(run, "run", ("nuclear_norm", "effective_rank")))
    sizes = sample_sizes(run).set_index("sample_id")
    wide = frame.pivot_table(index="sample_id", columns=["metric", "module"], values="value")
    log_len = np.log(np.maximum(sizes.loc[wide.index, "n_response_tokens"].to_numpy(float), 1))
    columns: dict[str, np.ndarray] = {}
    for module in (m for m in QUALITY_MODULES if ("effective_rank", m) in wide.columns):
        columns[f"erank_z_{module}"] = _length_residual_z(
            np.log(wide[("effective_rank", module)].to_numpy(float)), log_len
        )
        columns[f"nuclear_z_{module}"] = _length_residual_z(
            np.log(wide[("nuclear_norm", module)].to_numpy(float)), log_len
        )
    if not columns:
        raise ConfigError(f"{run.path}: grad_quality needs effective rank and nuclear norm of q, k, v or o")
    rank = _mean_over_modules([v for k, v in columns.items() if k.startswith("erank")])
    norm = _mean_over_modules([v for k, v in columns.items() if k.startswith("nuclear")])
    return pd.DataFrame(
        {
            "sample_id": wide.index,
            "grad_quality": (rank - norm) / 2,
            "grad_quality_rank": rank,
            "grad_quality_norm": norm,
            **columns,
            "nuclear_norm": wide["nuclear_norm"].mean(axis=1).to_numpy(),
            "effective_rank": wide["effective_rank"].mean(axis=1).to_numpy(),
            "n_response_tokens": sizes.loc[wide.index, "n_response_tokens"].to_numpy(),
        }
    ).reset_index(drop=True)
