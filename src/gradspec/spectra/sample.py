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
from gradspec.spectra.routes import sigma_route
from gradspec.spectra.similarity import ModuleStack, similarities
from gradspec.spectra.singular import core, core_singular_values, reduce_factor


@dataclass
class SampleSpectra:
    """sigma[module] is (L, k) float64; metrics[module][name] is (L,); similarity rows."""

    sigma: dict[str, torch.Tensor]
    metrics: dict[str, dict[str, torch.Tensor]]
    similarity: list[tuple[str, str, int, float]]


def stacked(tensors: list[torch.Tensor]) -> torch.Tensor:
    """(L, T, d) of per-layer (T, d) factors, at least float32, on the first layer's device
    (a model spread over several devices keeps each layer's factors where it ran)."""
    return at_least_float32(torch.stack([t.to(tensors[0].device) for t in tensors]))


def sample_spectra(f: SampleFactors, modules: Sequence[str], n_layers: int) -> SampleSpectra:
    """Singular values, metrics and similarities of one sample's gradients."""
    xs = {m: [f.x[(i, m)] for i in range(n_layers)] for m in modules}
    # The same storage in every layer means the same input (q, k, v share X): stack it, and
    # choose and take its route (QR core or formed G), once.
    readers: dict[tuple[object, ...], list[str]] = {}
    for m in modules:
        readers.setdefault((*(t.data_ptr() for t in xs[m]), *xs[m][0].shape), []).append(m)
    stacks: dict[str, ModuleStack] = {}
    sigma: dict[str, torch.Tensor] = {}
    for group in readers.values():
        x = stacked(xs[group[0]])
        deltas = {m: stacked([f.delta[(i, m)] for i in range(n_layers)]).to(x.device) for m in group}
        t, d_in = x.shape[-2], x.shape[-1]
        route = sigma_route(t, d_in, [d.shape[-1] for d in deltas.values()])
        x_side = reduce_factor(x.double()) if route == "reduced" else x.double()  # float64 once per input
        for m, d in deltas.items():
            c = core(x_side, d)
            sigma[m] = core_singular_values(c, min(t, d_in, d.shape[-1]))
            stacks[m] = ModuleStack.of(x, d, formed=c if route == "formed" else None)
    metrics = {m: spectral_metrics(sigma[m]) for m in modules}
    norms = {m: metrics[m]["frobenius_norm"] for m in modules}
    return SampleSpectra(sigma, metrics, similarities({m: stacks[m] for m in modules}, norms))
