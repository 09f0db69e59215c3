"""All spectral numbers of one sample: per (layer, module) singular values and metrics,
and its similarity rows. Inputs shared by several projections (q, k, v read the same X)
are reduced once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from gradspec.capture import SampleFactors
from gradspec.spectra.metrics import spectral_metrics, zero_small_gradients
from gradspec.spectra.routes import sigma_route
from gradspec.spectra.similarity import ModuleStack, probe_similarities, similarities
from gradspec.spectra.singular import (
    core,
    core_singular_values,
    gram_eigenvalues,
    reduce_factor,
    sigma_from_eigenvalues,
)
from gradspec.spectra.threads import for_each_layer


@dataclass
class SampleSpectra:
    """sigma[module] is (L, k) float64; metrics[module][name] is (L,); similarity rows."""

    sigma: dict[str, torch.Tensor]
    metrics: dict[str, dict[str, torch.Tensor]]
    similarity: list[tuple[str, str, int, float]]
    stacks: dict[str, ModuleStack] | None = None  # the factors, for cosines with another sample
    norms: dict[str, torch.Tensor] | None = None
    sample_id: str | None = None  # set on a run's probe, so that the probe is not compared with itself

    def with_probe(self, probe: SampleSpectra | None, sample_id: str | None = None) -> SampleSpectra:
        """These spectra (of sample ``sample_id``) with the cosines of every gradient with ``probe``'s
        added; none when ``probe`` is this very sample (a cosine of 1 with itself is no null, and would
        bias the probe column's mean by about 1/n)."""
        if probe is None or probe.stacks is None or self.stacks is None:
            return self
        if sample_id is not None and probe.sample_id == sample_id:
            return self
        assert self.norms is not None and probe.norms is not None
        rows = probe_similarities(self.stacks, self.norms, probe.stacks, probe.norms)
        return replace(self, similarity=[*self.similarity, *rows])


def input_group_spectra(
    x_layers: Sequence[torch.Tensor],
    deltas: dict[str, list[torch.Tensor]],
    batched_eigen: bool | None = None,
    core_dtype: torch.dtype = torch.float32,
    eigen_solver: str = "auto",
) -> dict[str, tuple[torch.Tensor, ModuleStack]]:
    """Singular values (L, k) and factors of every projection that reads one input X.

    ``batched_eigen``: eigenvalues in one call per module after all layers (the GPU way, the
    default off the CPU) instead of inside each layer's work (the CPU way). ``core_dtype``: the
    dtype G (or its QR core) is formed in; its Gram matrix and eigenvalues are float64 always.
    """
    n_layers = len(x_layers)
    t, d_in = x_layers[0].shape
    d_outs = {m: int(d[0].shape[-1]) for m, d in deltas.items()}
    route = sigma_route(t, d_in, list(d_outs.values()))
    width = t if route == "reduced" else d_in
    dev = x_layers[0].device
    cores = {m: torch.empty(n_layers, d, width, dtype=torch.float64, device=dev) for m, d in d_outs.items()}
    per_layer = dev.type == "cpu" if batched_eigen is None else not batched_eigen
    shapes = d_outs.items() if per_layer else ()  # eigenvalues are written per layer only on that path
    lam = {m: torch.empty(n_layers, min(d, width), dtype=torch.float64, device=dev) for m, d in shapes}

    dtype = x_layers[0].dtype  # a float64 model keeps float64 cores whatever core_dtype says

    def layer(i: int) -> None:
        # One layer's cores (G or G') into their slots of one stack per module, then on a CPU
        # the eigenvalues of their Gram matrices: no float64 copy of the whole (L, T, d)
        # factors, whose fresh memory pages cost more than the maths at long token counts.
        if route == "reduced":  # the QR in float64 (R carries X's geometry), once per input, shared
            x_side = reduce_factor(x_layers[i].to(dev, torch.float64)).to(torch.promote_types(core_dtype, dtype))
        else:
            x_side = x_layers[i].to(dev, torch.promote_types(core_dtype, dtype))
        for m in deltas:
            c = core(x_side, deltas[m][i], out=cores[m][i])
            if per_layer:
                gram_eigenvalues(c, lam[m][i])

    for_each_layer(layer, n_layers, dev)
    sigma: dict[str, torch.Tensor] = {}
    for m, d in d_outs.items():
        k = min(t, d_in, d)
        # Off the CPU one batched call per module, with no host sync per matrix.
        sigma[m] = sigma_from_eigenvalues(lam[m], k) if per_layer else core_singular_values(cores[m], k, eigen_solver)
    return {
        m: (
            sigma[m],
            ModuleStack.of(x_layers, deltas[m], formed=cores[m] if route == "formed" else None),
        )
        for m in deltas
    }


def sample_spectra(
    f: SampleFactors,
    modules: Sequence[str],
    n_layers: int,
    core_dtype: torch.dtype = torch.float32,
    eigen_solver: str = "auto",
    similarity: bool = True,
) -> SampleSpectra:
    """Singular values, metrics and (with ``similarity``) similarities of one sample's gradients
    (see ``input_group_spectra`` for ``core_dtype``)."""
    xs = {m: [f.x[(i, m)] for i in range(n_layers)] for m in modules}
    # The same storage in every layer means the same input (q, k, v share X): choose and take
    # its route (QR core or formed G) once.
    readers: dict[tuple[object, ...], list[str]] = {}
    for m in modules:
        readers.setdefault((*(t.data_ptr() for t in xs[m]), *xs[m][0].shape), []).append(m)
    stacks: dict[str, ModuleStack] = {}
    sigma: dict[str, torch.Tensor] = {}
    for group in readers.values():
        deltas = {m: [f.delta[(i, m)] for i in range(n_layers)] for m in group}
        found = input_group_spectra(xs[group[0]], deltas, core_dtype=core_dtype, eigen_solver=eigen_solver)
        for m, (s, stack) in found.items():
            sigma[m], stacks[m] = s, stack
    sigma = zero_small_gradients(sigma)  # zero in exact arithmetic: zero on every machine
    metrics = {m: spectral_metrics(sigma[m]) for m in modules}
    norms = {m: metrics[m]["frobenius_norm"] for m in modules}
    kept = {m: stacks[m] for m in modules}
    return SampleSpectra(sigma, metrics, similarities(kept, norms) if similarity else [], kept, norms)
