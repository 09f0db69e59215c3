"""All spectral numbers of one sample: per (layer, module) singular values and metrics,
and its similarity rows. Inputs shared by several projections (q, k, v read the same X)
are reduced once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gradspec.capture import SampleFactors
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


def sample_spectra(f: SampleFactors, modules: Sequence[str], n_layers: int) -> SampleSpectra:
    """Singular values, metrics and similarities of one sample's gradients."""
    xs = {m: [f.x[(i, m)] for i in range(n_layers)] for m in modules}
    # The same storage in every layer means the same input (q, k, v share X): choose and take
    # its route (QR core or formed G) once.
    readers: dict[tuple[object, ...], list[str]] = {}
    for m in modules:
        readers.setdefault((*(t.data_ptr() for t in xs[m]), *xs[m][0].shape), []).append(m)
    stacks: dict[str, ModuleStack] = {}
    sigma: dict[str, torch.Tensor] = {}
    for group in readers.values():
        x_layers = xs[group[0]]
        deltas = {m: [f.delta[(i, m)] for i in range(n_layers)] for m in group}
        t, d_in = x_layers[0].shape
        d_outs = {m: int(d[0].shape[-1]) for m, d in deltas.items()}
        route = sigma_route(t, d_in, list(d_outs.values()))
        width = t if route == "reduced" else d_in
        dev = x_layers[0].device
        cores = {m: torch.empty(n_layers, d, width, dtype=torch.float64, device=dev) for m, d in d_outs.items()}
        # One layer at a time into one stack per module: float64 copies of the whole (L, T, d)
        # factors would cost more, in fresh memory pages, than the maths (measured at 2048
        # tokens: 2.0 s of 5.5 s per sample went to those copies).
        for i, x in enumerate(x_layers):
            x64 = x.to(dev, torch.float64)
            x_side = reduce_factor(x64) if route == "reduced" else x64  # once per input, shared
            for m in group:
                core(x_side, deltas[m][i], out=cores[m][i])
        for m in group:
            sigma[m] = core_singular_values(cores[m], min(t, d_in, d_outs[m]))
            stacks[m] = ModuleStack.of(x_layers, deltas[m], formed=cores[m] if route == "formed" else None)
    metrics = {m: spectral_metrics(sigma[m]) for m in modules}
    norms = {m: metrics[m]["frobenius_norm"] for m in modules}
    return SampleSpectra(sigma, metrics, similarities({m: stacks[m] for m in modules}, norms))
