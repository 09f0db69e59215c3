"""Runs as long pandas frames: one row per (sample, layer, module, metric), ok samples only.

Everything downstream (means, tests, figures, correlations) reads these frames, so every
number is computed from the same rows. ``top_share`` is sigma_1 / sum(sigma), the share of
the largest direction, ``nuclear_norm_sum`` the nuclear norm times the response tokens T (the
gradient of the summed, not averaged, loss: it takes out the 1/T every mean-loss gradient
carries); cosines enter as the metrics ``adjacent_cosine`` (module q, k, ...)
and ``same_layer_cosine`` (module q*o, k*v).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from gradspec.config.analysis import ALL_METRICS, COSINE_METRICS, GRADIENT_METRICS
from gradspec.store.contract import METRICS
from gradspec.store.query import Run

# Metrics computed from the stored ones: the share of the largest direction, and the nuclear norm
# of the sum-reduced loss's gradient (the mean-reduced one times the response tokens).
DERIVED = {
    "top_share": "l.spectral_norm / nullif(l.nuclear_norm, 0)",
    "nuclear_norm_sum": "l.nuclear_norm * s.n_response_tokens",
}

__all__ = ["ALL_METRICS", "COSINE_METRICS", "GRADIENT_METRICS", "long_frame", "n_layers", "per_sample", "sample_sizes"]


def n_layers(run: Run) -> int:
    return int(run.manifest["model"]["num_layers"])


def sample_sizes(run: Run) -> pd.DataFrame:
    """sample_id, index, n_tokens, n_response_tokens, n_prompt_tokens, loss of the run's ok samples."""
    return run.sql(
        "select sample_id, index, n_tokens, n_response_tokens, n_prompt_tokens, loss from samples where status = 'ok'"
    ).df()


def long_frame(run: Run, group: str, metrics: Sequence[str] = ALL_METRICS) -> pd.DataFrame:
    """Columns: group, sample_id, layer, depth, module, metric, value (nulls dropped)."""
    ok = "sample_id in (select sample_id from samples where status = 'ok')"
    parts = []
    stats = [m for m in metrics if m in GRADIENT_METRICS]
    if stats:
        cols = ", ".join(f"l.{m}" if m in METRICS else f"{DERIVED[m]} as {m}" for m in stats)
        wide = run.sql(
            f"select l.sample_id, l.layer, l.module, {cols} from layer_stats l join samples s using (sample_id) "
            "where s.status = 'ok'"
        ).df()
        parts.append(wide.melt(["sample_id", "layer", "module"], stats, "metric", "value"))
    kinds = {
        "adjacent_cosine": "adjacent",
        "same_layer_cosine": "same_layer",
        "distant_cosine": "distant",
        "probe_cosine": "probe",
    }
    for metric in (m for m in metrics if m in kinds):
        sims = run.sql(
            f"select sample_id, layer, module, cosine as value from similarity where kind = '{kinds[metric]}' and {ok}"
        ).df()
        parts.append(sims.assign(metric=metric))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    frame = frame.dropna(subset=["value"])
    frame.insert(0, "group", group)
    frame["depth"] = frame["layer"] / max(n_layers(run) - 1, 1)
    return frame


def per_sample(frame: pd.DataFrame) -> pd.DataFrame:
    """Each sample's mean over layers per (module, metric): the unit of group tests."""
    return frame.groupby(["group", "sample_id", "module", "metric"], as_index=False)["value"].mean()
