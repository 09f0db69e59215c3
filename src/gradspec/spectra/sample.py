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


def stack(f: SampleFactors, module: str, n_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, T, d_in) and (L, T, d_out) factors of ``module`` across layers, at least float32."""
    x = at_least_float32(torch.stack([f.x[(i, module)] for i in range(n_layers)]))
    d = at_least_float32(torch.stack([f.delta[(i, module)] for i in range(n_layers)]))
    return x, d


def sample_spectra(f: SampleFactors, modules: Sequence[str], n_layers: int) -> SampleSpectra:
    """Singular values, metrics and similarities of one sample's gradients."""
    reduced: dict[tuple[int, ...], torch.Tensor] = {}
    stacks: dict[str, ModuleStack] = {}
    sigma: dict[str, torch.Tensor] = {}
    for m in modules:
        x, d = stack(f, m, n_layers)
        # Same storage for every layer means the same input (q, k, v share X): reduce it once.
        key = tuple(f.x[(i, m)].data_ptr() for i in range(n_layers)) + tuple(x.shape)
        if key not in reduced:
            reduced[key] = reduce_factor(x.double())
        sigma[m] = singular_values(x, d, x_reduced=reduced[key])
        stacks[m] = ModuleStack.of(x, d)
    metrics = {m: spectral_metrics(s) for m, s in sigma.items()}
    norms = {m: metrics[m]["frobenius_norm"] for m in modules}
    return SampleSpectra(sigma, metrics, similarities(stacks, norms))
