"""All spectral numbers of one sample: per (layer, module) singular values and metrics,
and its similarity rows. Inputs shared by several projections (q, k, v read the same X)
are reduced once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gradspec.capture import SampleFactors
from gradspec.numerics import at_least_float32
from gradspec.spectra.metrics import spectral_metrics
from gradspec.spectra.similarity import ModuleStack, similarities
from gradspec.spectra.singular import reduce_factor, singular_values


@dataclass
class SampleSpectra:
    """sigma[module] is (L, k) float64; metrics[module][name] is (L,); similarity rows."""

    sigma: dict[str, torch.Tensor]
    metrics: dict[str, dict[str, torch.Tensor]]
    similarity: list[tuple[str, str, int, float]]


def stacked(tensors: list[torch.Tensor]) -> torch.Tensor:
    """(L, T, d) of per-layer (T, d) factors, at least float32."""
    return at_least_float32(torch.stack(tensors))


def sample_spectra(f: SampleFactors, modules: Sequence[str], n_layers: int) -> SampleSpectra:
    """Singular values, metrics and similarities of one sample's gradients."""
    inputs: dict[tuple[object, ...], tuple[torch.Tensor, torch.Tensor]] = {}
    stacks: dict[str, ModuleStack] = {}
    sigma: dict[str, torch.Tensor] = {}
    for m in modules:
        xs = [f.x[(i, m)] for i in range(n_layers)]
        # The same storage in every layer means the same input (q, k, v share X): stack and
        # reduce it once.
        key = (*(t.data_ptr() for t in xs), *xs[0].shape)
        if key not in inputs:
            x = stacked(xs)
            inputs[key] = (x, reduce_factor(x.double()))
        x, x_reduced = inputs[key]
        d = stacked([f.delta[(i, m)] for i in range(n_layers)])
        sigma[m] = singular_values(x, d, x_reduced=x_reduced)
        stacks[m] = ModuleStack.of(x, d)
    metrics = {m: spectral_metrics(s) for m, s in sigma.items()}
    norms = {m: metrics[m]["frobenius_norm"] for m in modules}
    return SampleSpectra(sigma, metrics, similarities(stacks, norms))
