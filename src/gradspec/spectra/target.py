"""Each sample's gradient against one fixed gradient, a target set's mean: exact targeted selection.

The target is the mean over target records of each record's own response-loss gradient, formed
once per (layer, module) as a dense d_out x d_in matrix, Gbar = (1/n) sum_r Delta_r^T X_r. A
sample's inner product with it needs no d_out x d_in matrix of the sample's own:

    <Delta^T X, Gbar>_F = sum_t delta_t^T Gbar x_t = sum((Delta Gbar) * X)

which is T d_out d_in multiply-adds, what the backward pass spends on that weight's gradient;
the sample's norm comes from its factors (``similarity.gradient_norms``, the T x T route when it
is cheaper). So scoring a record costs one gradient pass plus about one more weight-gradient's
worth of products per projection: no projection to a small space (LESS's random projection of
LoRA gradients approximates exactly this), and no per-record d x d matrix. Measured on the
default model at 256 tokens (q/k/v/o, CPU): 1.34x a forward and backward pass per record, less
than a sample-level ``compute`` (0.87x, which also takes every spectrum); forming the target's
mean costs 1.2x a gradient pass per target record (``benchmarks/target.py``). Sums are float64, as
for every other inner product: one long dot product in float32 loses ~sqrt(n) eps.

The per-module cosine pools the layers (the cosine of the module's gradients of every layer
concatenated) and ``overall`` pools every chosen module of every layer, so a layer with large
gradients weighs as much as it does in the concatenated gradient.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from gradspec.capture import SampleFactors
from gradspec.errors import InputError
from gradspec.spectra.similarity import cosine, gradient_norms

Key = tuple[int, str]


class TargetGradient:
    """The running sum of target records' gradients, per (layer, module), in float64."""

    def __init__(self) -> None:
        self.sums: dict[Key, torch.Tensor] = {}
        self.count = 0

    def add(self, factors: SampleFactors) -> None:
        """Add one target record's gradient, Delta^T X for every projection."""
        for key, x in factors.x.items():
            g = factors.delta[key].double().T @ x.double()
            if key in self.sums:
                self.sums[key] += g.to(self.sums[key].device)
            else:
                self.sums[key] = g
        self.count += 1

    def mean(self) -> dict[Key, torch.Tensor]:
        """Gbar per (layer, module); refuses an empty target (no mean of nothing)."""
        if self.count == 0:
            raise InputError("--target: no target record could be measured")
        return {key: s / self.count for key, s in self.sums.items()}


@dataclass(frozen=True)
class TargetCosines:
    """One sample's cosines with the target: per (layer, module), per module and overall."""

    layers: dict[str, list[float | None]]
    """module -> cosine of each layer's gradient with the target's, layer 0 first."""
    modules: dict[str, float]
    """module -> cosine of the module's gradients of all layers, concatenated."""
    overall: float
    """Cosine of every measured gradient concatenated with the target's."""


def defined(v: float) -> float | None:
    return v if v == v else None  # NaN (a zero gradient) is undefined, not 0


def target_cosines(
    factors: SampleFactors, target: Mapping[Key, torch.Tensor], target_norms: Mapping[Key, float], n_layers: int
) -> TargetCosines:
    """Cosines of ``factors``' gradients with ``target`` (``TargetGradient.mean()``) by the factored
    inner product; ``target_norms``: |Gbar|_F of each key, computed once for all samples."""
    modules = list(dict.fromkeys(name for _, name in factors.x))
    ips: dict[str, torch.Tensor] = {}
    norms: dict[str, torch.Tensor] = {}
    tnorms: dict[str, torch.Tensor] = {}
    for m in modules:
        keys = [(layer, m) for layer in range(n_layers)]
        xs = [factors.x[k] for k in keys]
        ds = [factors.delta[k] for k in keys]
        ips[m] = torch.stack(
            [((d.double() @ target[k].to(d.device)) * x.double()).sum().cpu() for k, x, d in zip(keys, xs, ds)]
        )
        norms[m] = gradient_norms(xs, ds).cpu()
        tnorms[m] = torch.tensor([target_norms[k] for k in keys], dtype=torch.float64)
    layers = {m: [defined(c) for c in cosine(ips[m], norms[m], tnorms[m]).tolist()] for m in modules}

    def pooled(names: Sequence[str]) -> float:
        ip = sum(float(ips[m].sum()) for m in names)
        a = sum(float((norms[m] ** 2).sum()) for m in names) ** 0.5
        b = sum(float((tnorms[m] ** 2).sum()) for m in names) ** 0.5
        f64 = torch.float64  # torch.tensor of a Python float would be float32: 1e-7 off
        return float(cosine(torch.tensor(ip, dtype=f64), torch.tensor(a, dtype=f64), torch.tensor(b, dtype=f64)))

    by_module = {m: pooled([m]) for m in modules}
    return TargetCosines(layers, by_module, pooled(modules))
