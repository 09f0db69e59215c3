"""One computed sample turned into rows of the run-folder tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from gradspec.capture import SampleFactors
from gradspec.config.spectra import SpectraConfig, SpectraPrecision
from gradspec.prompting import Encoded
from gradspec.spectra import METRICS, SampleSpectra, sample_spectra
from gradspec.store.rows import number_or_null, sample_row

Rows = dict[str, list[dict[str, Any]]]
ROUNDING: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


def spectra_rows(sample_id: str, spectra: SampleSpectra, keep_spectra: SpectraPrecision | None) -> Rows:
    """layer_stats, similarity and (when ``keep_spectra`` names a precision) spectra rows of one sample.

    ``keep_spectra="bfloat16"`` rounds each stored singular value to 8 significant bits (relative
    error at most 2^-8, about 0.4%; still stored as float32, so readers see no difference), for
    about 3x smaller spectra. The metrics are always computed from the exact values.
    """
    rounding = ROUNDING[keep_spectra or "float32"]
    stats: list[dict[str, Any]] = []
    svals: list[dict[str, Any]] = []
    for module, metrics in spectra.metrics.items():
        columns = {name: metrics[name].tolist() for name in METRICS}
        for layer in range(len(columns[METRICS[0]])):
            row: dict[str, Any] = {"sample_id": sample_id, "layer": layer, "module": module}
            row.update({name: number_or_null(columns[name][layer]) for name in METRICS})
            stats.append(row)
            if keep_spectra is not None:
                values = spectra.sigma[module][layer].to(rounding).float().tolist()
                svals.append({"sample_id": sample_id, "layer": layer, "module": module, "singular_values": values})
    sims = [
        {"sample_id": sample_id, "kind": kind, "module": module, "layer": layer, "cosine": number_or_null(cos)}
        for kind, module, layer, cos in spectra.similarity
    ]
    return {"layer_stats": stats, "similarity": sims, "spectra": svals}


def sample_rows(
    enc: Encoded,
    factors: SampleFactors,
    modules: Sequence[str],
    n_layers: int,
    spectral: SpectraConfig,
    probe: SampleSpectra | None = None,
) -> Rows:
    """All table rows of one computed sample; a non-finite loss or gradient is an error row only.
    With ``probe`` (another sample's spectra), the cosines with its gradients too."""
    sizes: dict[str, Any] = dict(
        n_tokens=enc.n_tokens,
        n_response_tokens=enc.n_response_tokens,
        n_prompt_tokens=enc.n_prompt_tokens,
        truncated=enc.truncated,
        n_positions=enc.n_positions,
    )
    if not math.isfinite(factors.loss):
        reason = f"record {enc.index}: loss is {factors.loss}"
        return {"samples": [sample_row(enc.sample_id, enc.index, "error", reason, **sizes)]}
    if not factors.finite():
        reason = f"record {enc.index}: gradient has NaN or Inf (try --dtype float32)"
        return {"samples": [sample_row(enc.sample_id, enc.index, "error", reason, loss=factors.loss, **sizes)]}
    half = next(iter(factors.delta.values())).dtype in (torch.float16, torch.bfloat16)
    vanished = factors.vanished() if half else []
    if vanished:
        dtype = str(next(iter(factors.delta.values())).dtype).removeprefix("torch.")
        where = ", ".join(f"layer {layer} {name}" for layer, name in vanished[:3])
        reason = f"record {enc.index}: gradient underflow in {dtype} ({where}): use --dtype float32"
        return {"samples": [sample_row(enc.sample_id, enc.index, "error", reason, loss=factors.loss, **sizes)]}
    spectra = sample_spectra(factors, modules, n_layers, DTYPES[spectral.core_dtype], spectral.eigen_solver)
    spectra = spectra.with_probe(probe, enc.sample_id)
    rows = spectra_rows(enc.sample_id, spectra, spectral.spectra_precision if spectral.spectra else None)
    rows["samples"] = [sample_row(enc.sample_id, enc.index, "ok", loss=factors.loss, **sizes)]
    return rows
