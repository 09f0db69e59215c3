"""Per-sample unification: gradient metrics joined with quality scores on ``sample_id``.

``correlate`` reports the Spearman correlation of each quality metric (IFD, InsTag, difficulty,
reward, ...) with each gradient metric, per module with layers averaged and per layer, raw
and with log response length partialled out. The gradients' own score is ``grad_quality.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gradspec.analysis.figures import new_figure, save_figure
from gradspec.analysis.frames import GRADIENT_METRICS, long_frame, per_sample, sample_sizes
from gradspec.analysis.stats import fdr, partial_spearman, spearman
from gradspec.analysis.tables import write_table
from gradspec.analysis.within import within_table
from gradspec.artifacts import CORRELATION, write_marker
from gradspec.config.analysis import QUALITY_FIELDS
from gradspec.config.names import segment
from gradspec.console import warn
from gradspec.data import Dataset, load_dataset
from gradspec.data.values import lookup, numeric_value
from gradspec.errors import ConfigError
from gradspec.store.query import Run


def quality_frame(dataset: Dataset, fields: Sequence[str] | None = None) -> pd.DataFrame:
    """sample_id and the numeric quality fields of a scored file (undefined values are NaN; a number
    written as text, as the natural pool's win rates are, counts; a nested field by its dotted path)."""
    wanted = [segment(f, "quality field") for f in fields or QUALITY_FIELDS]  # each names a file
    records = []
    for item, row in dataset.with_rows():
        value = row.value if isinstance(row.value, dict) else {}
        rec: dict[str, Any] = {"sample_id": item.sample_id}
        for f in wanted:
            number = numeric_value(lookup(value, f))
            rec[f] = np.nan if number is None else number
        records.append(rec)
    frame = pd.DataFrame(records)
    present = [f for f in wanted if frame[f].notna().any()]
    if not present:
        raise ConfigError(f"{dataset.path}: no record has any of the quality fields {', '.join(wanted)}")
    return frame[["sample_id", *present]]


MIN_N = 20  # fewer joined samples earns a warning

WITHIN_READINGS = ("nuclear_norm", "effective_rank", "loss", "n_response_tokens", "response_tokens")
"""The readings of a within-block table people read first (``response_tokens``: the length's name up to 0.2)."""

RUN_COLUMNS = ("module", "metric", "layer", "value", "reading", "block", "loss", "n_tokens", "n_response_tokens")
"""Columns the run's own frames carry: a scored field of one of these names (the length metric's
``n_response_tokens``, counted untruncated) is read as ``NAME_scored``, apart from the run's."""


def apart_from_run(quality: pd.DataFrame) -> pd.DataFrame:
    """``quality`` with each field named like a run column renamed ``NAME_scored``."""
    return quality.rename(columns={c: f"{c}_scored" for c in quality.columns if c in RUN_COLUMNS})


def score_correlations(quality: pd.DataFrame) -> pd.DataFrame:
    """Spearman correlation of every pair of quality fields over the records that have both, with
    Benjamini-Hochberg q-values over the pairs."""
    fields = [c for c in quality.columns if c != "sample_id"]
    rows = []
    for i, a in enumerate(fields):
        for b in fields[i + 1 :]:
            rho, p, n = spearman(quality[a], quality[b])
            rows.append({"a": a, "b": b, "rho": rho, "p": p, "n": n})
    table = pd.DataFrame(rows, columns=["a", "b", "rho", "p", "n"])
    table["q_value"] = fdr(table["p"].to_numpy()) if len(table) else []
    return table


def block_keys(dataset: Dataset, field: str) -> pd.Series:
    """sample_id -> the value of ``field`` (a block, e.g. the prompt several records answer), as text;
    refused when no record has it."""
    keys = {}
    for item, row in dataset.with_rows():
        value = lookup(row.value, field) if isinstance(row.value, dict) else None
        if value is not None:
            keys[item.sample_id] = str(value)
    if not keys:
        raise ConfigError(f"--within {field}: no record of {dataset.path} has a field {field!r}")
    return pd.Series(keys, name="block")


SAMPLE = "sample"
"""The ``module`` of a within-block reading that belongs to the sample, not to a projection (loss, length)."""


COVARIATES = ("loss", "n_response_tokens")
"""What a curator has without gradients: read on their own within blocks, and partialled out of the rest."""


def within_of(samples: pd.DataFrame, blocks: pd.Series, q_cols: Sequence[str], run: Run) -> pd.DataFrame:
    """The within-block table (``analysis/within.py``) of the gradient metrics per module, and of the
    loss and response length, which a curator has without gradients."""
    sizes = sample_sizes(run)[["sample_id", *COVARIATES]]
    plain = [sizes[["sample_id"]].assign(reading=name, module=SAMPLE, value=sizes[name]) for name in COVARIATES]
    readings = pd.concat([samples.rename(columns={"metric": "reading"}), *plain], ignore_index=True)
    covariates = sizes.set_index("sample_id")[list(COVARIATES)].astype(float)
    readings = readings.drop(columns=[c for c in [*q_cols, *covariates] if c in readings]).merge(
        samples.drop_duplicates("sample_id")[["sample_id", *q_cols]], on="sample_id"
    )
    readings = readings.assign(block=readings["sample_id"].map(blocks)).dropna(subset=["block"])
    # Every reading but the loss and the length is also read beyond them (partialled out within blocks).
    readings = readings.join(covariates, on="sample_id")
    return within_table(readings, "block", q_cols, covariates=COVARIATES)


def module_correlations(samples: pd.DataFrame, q_cols: Sequence[str]) -> pd.DataFrame:
    """Per module and gradient metric, Spearman's rho of each quality field with the metric's value,
    raw and with log length partialled out; q-values (Benjamini-Hochberg) over every test of the table."""
    rows = []
    for (module, metric), d in samples.groupby(["module", "metric"]):
        log_len = np.log(np.maximum(d["n_response_tokens"].to_numpy(float), 1))
        for q in q_cols:
            rho, p, n = spearman(d[q], d["value"])
            rho_l, p_l, _ = partial_spearman(d[q], d["value"], log_len)
            rows.append(
                {
                    "quality": q,
                    "module": module,
                    "gradient_metric": metric,
                    "rho": rho,
                    "p": p,
                    "n": n,
                    "rho_length_partialled": rho_l,
                    "p_length_partialled": p_l,
                }
            )
    table = pd.DataFrame(rows)
    table["q_value"] = fdr(table["p"].to_numpy())
    table["q_value_length_partialled"] = fdr(table["p_length_partialled"].to_numpy())
    return table


def layer_correlations(by_layer: pd.DataFrame, q_cols: Sequence[str]) -> pd.DataFrame:
    """Per module, gradient metric and layer, Spearman's rho of each quality field with the layer's value."""
    rows = []
    for (module, metric, layer), d in by_layer.groupby(["module", "metric", "layer"]):
        for q in q_cols:
            rho, p, n = spearman(d[q], d["value"])
            rows.append(
                {"quality": q, "module": module, "gradient_metric": metric, "layer": layer, "rho": rho, "p": p, "n": n}
            )
    return pd.DataFrame(rows)


def correlate(
    run: Run,
    scored: str | Path,
    out: str | Path,
    fields: Sequence[str] | None = None,
    scores: bool = False,
    within: str | None = None,
) -> dict[str, Any]:
    """Write ``correlations`` (per module) and ``correlations_by_layer`` tables and heat maps, with
    ``scores`` the scores' correlations with each other, and with ``within`` the correlations within
    blocks of records that share that field."""
    out = Path(out)
    dataset = load_dataset(scored)  # read once for the scores and the blocks
    quality = apart_from_run(quality_frame(dataset, fields))
    blocks = block_keys(dataset, within) if within is not None else None  # refused before anything is written
    frame = long_frame(run, "run", GRADIENT_METRICS)
    sizes = sample_sizes(run)[["sample_id", "n_response_tokens"]]
    joined_ids = set(quality.sample_id) & set(sizes.sample_id)
    if not joined_ids:
        raise ConfigError(f"{scored} and {run.path} share no sample_id: was the run computed on this data?")
    q_cols = [c for c in quality.columns if c != "sample_id"]
    samples = per_sample(frame).merge(quality, on="sample_id").merge(sizes, on="sample_id")
    table = module_correlations(samples, q_cols)
    warnings = []
    if len(joined_ids) < MIN_N:
        warnings.append(
            f"only {len(joined_ids)} samples joined: a Spearman correlation below {MIN_N} samples is too noisy to "
            "read (rho = 1 comes easily); score and compute more samples"
        )
        warn(f"{out}: {warnings[-1]}")
    files = write_table(table, CORRELATION.stem(out, "table"))
    layers = layer_correlations(frame.merge(quality, on="sample_id"), q_cols)
    files += write_table(layers, CORRELATION.stem(out, "by_layer"))
    for q in q_cols:
        files += heat_map(layers[layers.quality == q], q, out / f"correlation_by_layer_{q}")
    if scores:
        files += write_table(score_correlations(quality), CORRELATION.stem(out, "scores"))
    if blocks is not None:
        files += write_table(within_of(samples, blocks, q_cols, run), CORRELATION.stem(out, "within"))
    result = {
        "joined_samples": len(joined_ids),
        "quality_fields": q_cols,
        "warnings": warnings,
        "files": [str(f) for f in files],
    }
    config = {
        "run": str(run.path.resolve()),
        "scored": str(Path(scored).resolve()),
        "fields": fields and list(fields),
        "within": within,
    }
    write_marker(out, CORRELATION, config, **{**result, "files": sorted(str(f.relative_to(out)) for f in files)})
    return result


def heat_map(layers: pd.DataFrame, quality: str, stem: Path) -> list[Path]:
    """Spearman rho per layer (x) and module (y), one panel per gradient metric."""
    metrics = [m for m in ("nuclear_norm", "effective_rank") if m in set(layers.gradient_metric)]
    fig, axes = new_figure(
        (9, 1.6 + 1.1 * len(metrics) * 2), nrows=len(metrics), ncols=1, squeeze=False, layout="constrained"
    )  # no title under the next panel's label
    image = None
    for ax, metric in zip(axes[:, 0], metrics):
        grid = layers[layers.gradient_metric == metric].pivot_table(index="module", columns="layer", values="rho")
        image = ax.imshow(grid.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_yticks(range(len(grid.index)), grid.index)
        ax.set_xticks(range(0, len(grid.columns), max(1, len(grid.columns) // 10)))
        ax.set_title(f"Spearman rho of {quality} with {metric.replace('_', ' ')}")
        ax.set_xlabel("layer")
        ax.set_ylabel("module")
    if image is not None:
        fig.colorbar(image, ax=axes[:, 0].tolist(), label="Spearman rho")
    return save_figure(fig, stem)
