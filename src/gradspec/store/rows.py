"""Turn one sample's spectra into rows of the run-folder tables."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch

from gradspec.spectra import METRICS, SampleSpectra

SpectraPrecision = Literal["float32", "bfloat16"]
SPECTRA_PRECISIONS: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _num(value: float) -> float | None:
    """NaN and inf are stored as null: an undefined number is never a number."""
    return value if math.isfinite(value) else None


def spectra_rows(
    sample_id: str, spectra: SampleSpectra, keep_spectra: SpectraPrecision | None
) -> dict[str, list[dict[str, Any]]]:
    """layer_stats, similarity and (when ``keep_spectra`` names a precision) spectra rows of one sample.

    ``keep_spectra="bfloat16"`` rounds each stored singular value to 8 significant bits (relative
    error at most 2^-8, about 0.4%; still stored as float32, so readers see no difference), for
    about 3x smaller spectra. The metrics are always computed from the exact values.
    """
    rounding = SPECTRA_PRECISIONS[keep_spectra or "float32"]
    stats: list[dict[str, Any]] = []
    svals: list[dict[str, Any]] = []
    for module, metrics in spectra.metrics.items():
        columns = {name: metrics[name].tolist() for name in METRICS}
        for layer in range(len(columns[METRICS[0]])):
            row: dict[str, Any] = {"sample_id": sample_id, "layer": layer, "module": module}
            row.update({name: _num(columns[name][layer]) for name in METRICS})
            stats.append(row)
            if keep_spectra is not None:
                svals.append(
                    {
                        "sample_id": sample_id,
                        "layer": layer,
                        "module": module,
                        "singular_values": spectra.sigma[module][layer].to(rounding).float().tolist(),
                    }
                )
    sims = [
        {"sample_id": sample_id, "kind": kind, "module": module, "layer": layer, "cosine": _num(cos)}
        for kind, module, layer, cos in spectra.similarity
    ]
    return {"layer_stats": stats, "similarity": sims, "spectra": svals}


def sample_row(
    sample_id: str,
    index: int,
    status: str,
    reason: str | None = None,
    n_tokens: int | None = None,
    n_response_tokens: int | None = None,
    loss: float | None = None,
    n_prompt_tokens: int | None = None,
    truncated: bool | None = None,
) -> dict[str, Any]:
    """One row of the ``samples`` table."""
    return {
        "sample_id": sample_id,
        "index": index,
        "status": status,
        "reason": reason,
        "n_tokens": n_tokens,
        "n_response_tokens": n_response_tokens,
        "loss": None if loss is None else _num(loss),
        "n_prompt_tokens": n_prompt_tokens,
        "truncated": truncated,
    }
