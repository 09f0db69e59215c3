"""One token batch measured step by step (``compute --steps``): the sample rows as ever, and a
``step_stats`` row per step, layer and module, with the check that the steps add up.

A sample's loss is the sum of its steps' shares, so its gradient is the sum of theirs. That is
checked from the factors, never by forming a gradient: what is left of the sample's output
gradients once every step's is taken away, E, makes the residual gradient E^T X (the inputs X
are the same in every backward pass), and ``sum_residual`` is |E^T X|_F / |G|_F.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from gradspec.capture import run_batch_steps
from gradspec.computation.job import Job
from gradspec.computation.rows import DTYPES, Rows, sample_rows, spectra_rows
from gradspec.prompting import Encoded
from gradspec.spectra import SampleSpectra, sample_spectra
from gradspec.spectra.similarity import gradient_norms
from gradspec.store.rows import number_or_null

Key = tuple[int, str]


def step_batch_rows(job: Job, batch: Sequence[Encoded], probe: SampleSpectra | None = None) -> Rows:
    """The rows of one batch: each sample's (``sample_rows``) and, for those that computed, its steps'."""
    spectral = job.config.spectral
    dtype = DTYPES[spectral.core_dtype]
    rows: Rows = {}
    left: dict[int, dict[Key, torch.Tensor]] = {}  # E of each sample that computed
    inputs: dict[int, dict[Key, torch.Tensor]] = {}
    norms: dict[int, dict[Key, float]] = {}
    steps: dict[int, list[dict[str, Any]]] = {}
    for j, factors in run_batch_steps(job.loaded.model, job.projections, batch):
        if j < 0:
            for b, (enc, whole) in enumerate(zip(batch, factors)):
                assert whole is not None
                made = sample_rows(enc, whole, job.modules, job.n_layers, spectral, probe)
                for table, table_rows in made.items():
                    rows.setdefault(table, []).extend(table_rows)
                if made["samples"][0]["status"] == "ok":
                    left[b] = {k: d.clone() for k, d in whole.delta.items()}
                    inputs[b] = whole.x
                    norms[b] = {(r["layer"], r["module"]): r["frobenius_norm"] for r in made["layer_stats"]}
                    steps[b] = []
            continue
        for b, part in enumerate(factors):
            if part is None or b not in left:
                continue
            for k, d in part.delta.items():
                left[b][k] -= d
            step = batch[b].steps[j]
            # Positions after the one that predicts the step's last token get no gradient from it.
            spectra = sample_spectra(
                part.first(step.token_end - 1),
                job.modules,
                job.n_layers,
                dtype,
                spectral.eigen_solver,
                similarity=False,
            )
            for row in spectra_rows(batch[b].sample_id, spectra, None)["layer_stats"]:
                row.update(
                    step=j,
                    token_start=step.token_start,
                    token_end=step.token_end,
                    char_start=step.char_start,
                    char_end=step.char_end,
                    loss=number_or_null(part.loss),
                )
                steps[b].append(row)
    for b, step_rows in steps.items():
        residual = sum_residuals(inputs[b], left[b], job.modules, job.n_layers, norms[b])
        for row in step_rows:
            row["sum_residual"] = residual[(row["layer"], row["module"])]
        rows.setdefault("step_stats", []).extend(step_rows)
    return rows


def sum_residuals(
    x: dict[Key, torch.Tensor],
    left: dict[Key, torch.Tensor],
    modules: Sequence[str],
    n_layers: int,
    norms: Mapping[Key, float | None],
) -> dict[Key, float | None]:
    """|E^T X|_F / |G|_F per (layer, module): how far the steps' gradients are from adding up to the
    sample's (round-off only); null where the sample's gradient is zero or undefined."""
    out: dict[Key, float | None] = {}
    for m in modules:
        size = gradient_norms([x[(i, m)] for i in range(n_layers)], [left[(i, m)] for i in range(n_layers)]).tolist()
        for i, r in enumerate(size):
            whole = norms[(i, m)]
            out[(i, m)] = number_or_null(r / whole) if whole else None
    return out
