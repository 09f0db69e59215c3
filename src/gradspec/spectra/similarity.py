"""Cosines between per-sample gradients, from their factors.

<G1, G2>_F = trace(X1^T D1 D2^T X2) = sum((D1 D2^T) * (X1 X2^T)), so two gradients over the
same T tokens can be compared through T x T matrices (``factored``) or by forming each G once
(``formed``); ``routes.inner_product_route`` picks the cheaper, and both agree to round-off.

Kinds: ``adjacent`` compares module m of layer i with module m of layer i+1 (stored at
``layer`` i); ``same_layer`` compares q with o and k with v inside one layer, as flattened
[out, in] matrices, which is defined only when the two have the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from gradspec.spectra.routes import Route, inner_product_route

SAME_LAYER_PAIRS: tuple[tuple[str, str], ...] = (("q", "o"), ("k", "v"))


@dataclass
class ModuleStack:
    """One module's factors for all layers of a sample: x (L, T, d_in), delta (L, T, d_out)."""

    x: torch.Tensor
    delta: torch.Tensor
    route: Route
    _g: torch.Tensor | None = None

    @classmethod
    def of(
        cls, x: torch.Tensor, delta: torch.Tensor, route: Route | None = None, formed: torch.Tensor | None = None
    ) -> ModuleStack:
        """``formed``: G already made (for the singular values); inner products then use it."""
        if formed is not None:
            return cls(x, delta, "formed", formed)
        t, d_in, d_out = x.shape[-2], x.shape[-1], delta.shape[-1]
        return cls(x, delta, route or inner_product_route(t, d_in, d_out))

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.delta.shape[-1]), int(self.x.shape[-1])

    def gradients(self) -> torch.Tensor:
        """G = delta^T x for every layer, (L, d_out, d_in); formed once."""
        if self._g is None:
            self._g = self.delta.transpose(-1, -2) @ self.x
        return self._g


def inner(a: ModuleStack, b: ModuleStack, ia: slice | int, ib: slice | int) -> torch.Tensor:
    """<G_a[ia], G_b[ib]>_F by the cheaper route (formed only if both are formed anyway)."""
    if a.route == "formed" and b.route == "formed":
        return (a.gradients()[ia] * b.gradients()[ib]).sum((-1, -2))
    dd = a.delta[ia] @ b.delta[ib].transpose(-1, -2)  # (..., T, T)
    xx = a.x[ia] @ b.x[ib].transpose(-1, -2)
    return (dd * xx).sum((-1, -2))


def cosine(ip: torch.Tensor, norm_a: torch.Tensor, norm_b: torch.Tensor) -> torch.Tensor:
    """ip / (|a| |b|), NaN where either gradient is zero, clamped to [-1, 1] against round-off."""
    denom = norm_a.double() * norm_b.double()
    cos = (ip.double() / denom).clamp(-1.0, 1.0)
    return torch.where(denom > 0, cos, torch.full_like(cos, float("nan")))


def similarities(
    stacks: Mapping[str, ModuleStack], norms: Mapping[str, torch.Tensor]
) -> list[tuple[str, str, int, float]]:
    """(kind, module, layer, cosine) rows for one sample.

    ``norms[m]`` holds the Frobenius norms of module m's gradients per layer, (L,).
    """
    rows: list[tuple[str, str, int, float]] = []
    for m, s in stacks.items():
        n_layers = s.x.shape[0]
        if n_layers < 2:
            continue
        cos = cosine(inner(s, s, slice(0, -1), slice(1, None)), norms[m][:-1], norms[m][1:])
        rows.extend(("adjacent", m, i, float(c)) for i, c in enumerate(cos))
    for a, b in same_layer_pairs(stacks):
        cos = cosine(inner(stacks[a], stacks[b], slice(None), slice(None)), norms[a], norms[b])
        rows.extend(("same_layer", f"{a}*{b}", i, float(c)) for i, c in enumerate(cos))
    return rows


def same_layer_pairs(stacks: Mapping[str, ModuleStack]) -> list[tuple[str, str]]:
    """The q*o / k*v pairs present whose gradients have the same shape."""
    return [(a, b) for a, b in SAME_LAYER_PAIRS if a in stacks and b in stacks and stacks[a].shape == stacks[b].shape]


def same_layer_notes(shapes: Mapping[str, tuple[int, int]], modules: Sequence[str]) -> dict[str, str]:
    """For the manifest: how each same-layer pair is defined for this model, or why it is absent."""
    notes: dict[str, str] = {}
    for a, b in SAME_LAYER_PAIRS:
        if a not in modules or b not in modules:
            continue
        if shapes[a] == shapes[b]:
            notes[f"{a}*{b}"] = f"cosine of the flattened [out, in] gradients ({shapes[a][0]}x{shapes[a][1]})"
        else:
            notes[f"{a}*{b}"] = (
                f"not computed: {a} is {shapes[a][0]}x{shapes[a][1]}, {b} is {shapes[b][0]}x{shapes[b][1]}"
            )
    return notes
