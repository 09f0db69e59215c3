"""Cosines between per-sample gradients, from their factors.

<G1, G2>_F = trace(X1^T D1 D2^T X2) = sum((D1 D2^T) * (X1 X2^T)), so two gradients over the
same T tokens can be compared through T x T matrices (``factored``) or by forming each G once
(``formed``); ``routes.inner_product_route`` picks the cheaper, and both agree to round-off.

Kinds: ``adjacent`` compares module m of layer i with module m of layer i+1 (stored at
``layer`` i); ``distant`` layer i with layer i+2 (the null adjacency is read against);
``same_layer`` compares q with o and k with v inside one layer; ``probe`` compares each gradient
with the same layer and module of one other sample, the run's probe (the null for everything
else: gradients of unrelated samples are not orthogonal). When the two
have the same shape this is the cosine of the flattened [out, in] matrices, as the paper
computes it. When they do not (Gemma 3: q is 1024x640, o is 640x1024) o's gradient is
transposed first, so both map the same spaces (hidden -> attention) and like is compared with
like: <G_q, G_o^T> = sum((D_q X_o^T) * (X_q D_o^T)), again through T x T matrices. The
manifest says which definition a run used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from gradspec.numerics import at_least_float32
from gradspec.spectra.routes import Route, inner_product_route
from gradspec.store.contract import SAME_LAYER_PAIRS


def stack_layers(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """(L, T, d) of per-layer (T, d) factors, at least float32, on the first layer's device
    (a model spread over several devices keeps each layer's factors where it ran)."""
    return at_least_float32(torch.stack([t.to(tensors[0].device) for t in tensors]))


@dataclass
class ModuleStack:
    """One module's factors for all layers of a sample: per-layer X (T, d_in) and Delta
    (T, d_out), stacked to (L, T, d) only if a factored inner product needs them, or G formed
    (L, d_out, d_in) for the singular values already."""

    layers_x: Sequence[torch.Tensor]
    layers_delta: Sequence[torch.Tensor]
    route: Route
    _g: torch.Tensor | None = None
    _x: torch.Tensor | None = None
    _delta: torch.Tensor | None = None

    @classmethod
    def of(
        cls, x: Sequence[torch.Tensor], delta: Sequence[torch.Tensor], formed: torch.Tensor | None = None
    ) -> ModuleStack:
        """Per-layer (T, d) factors; ``formed``: G already made (for the singular values), which
        inner products then use. Otherwise the cheaper route for this shape is taken."""
        if formed is not None:
            return cls(list(x), list(delta), "formed", formed)
        t, d_in, d_out = x[0].shape[-2], x[0].shape[-1], delta[0].shape[-1]
        return cls(list(x), list(delta), inner_product_route(t, d_in, d_out))

    @property
    def x(self) -> torch.Tensor:
        if self._x is None:
            self._x = stack_layers(self.layers_x)
        return self._x

    @property
    def delta(self) -> torch.Tensor:
        if self._delta is None:
            self._delta = stack_layers(self.layers_delta)  # layer 0's device, as for x
        return self._delta

    @property
    def n_layers(self) -> int:
        return len(self.layers_x)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.layers_delta[0].shape[-1]), int(self.layers_x[0].shape[-1])

    def gradients(self) -> torch.Tensor:
        """G = delta^T x for every layer, (L, d_out, d_in), float64 like the singular values'
        cores; formed once."""
        if self._g is None:
            self._g = self.delta.double().transpose(-1, -2) @ self.x.double()
        return self._g


def frobenius(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b) over the last two axes in float64, as one batched dot product: no
    elementwise product of the whole stacks is materialised (29 x 576 x 576 for adjacent
    layers). float64 because one long dot product accumulated in float32 loses ~sqrt(n) eps
    (measured: cosines 2.4e-6 off at 384 tokens, against 9e-8 in float64)."""
    return torch.einsum("...ij,...ij->...", a.double(), b.double())


def inner_transposed(a: ModuleStack, b: ModuleStack) -> torch.Tensor:
    """<G_a, G_b^T>_F per layer, for G_a (m x n) and G_b (n x m)."""
    if a.route == "formed" and b.route == "formed":
        return frobenius(a.gradients(), b.gradients().transpose(-1, -2))
    dx = a.delta @ b.x.transpose(-1, -2)  # (L, T, T): D_a X_b^T
    xd = a.x @ b.delta.transpose(-1, -2)  # X_a D_b^T
    return frobenius(dx, xd)


def inner(a: ModuleStack, b: ModuleStack, ia: slice | int, ib: slice | int) -> torch.Tensor:
    """<G_a[ia], G_b[ib]>_F by the cheaper route (formed only if both are formed anyway)."""
    if a.route == "formed" and b.route == "formed":
        return frobenius(a.gradients()[ia], b.gradients()[ib])
    dd = a.delta[ia] @ b.delta[ib].transpose(-1, -2)  # (..., T, T)
    xx = a.x[ia] @ b.x[ib].transpose(-1, -2)
    return frobenius(dd, xx)


def gradient_norms(x: Sequence[torch.Tensor], delta: Sequence[torch.Tensor]) -> torch.Tensor:
    """|Delta^T X|_F of each layer's factors, (L,) float64, by the cheaper route: the norm of a
    gradient known only as factors (the difference of two gradients over the same inputs)."""
    stack = ModuleStack.of(x, delta)
    return inner(stack, stack, slice(None), slice(None)).clamp(min=0).sqrt()


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
        if s.n_layers < 2:
            continue
        cos = cosine(inner(s, s, slice(0, -1), slice(1, None)), norms[m][:-1], norms[m][1:])
        rows.extend(("adjacent", m, i, c) for i, c in enumerate(cos.tolist()))  # one transfer, not one per value
        if s.n_layers > DISTANT:  # the null for adjacency: layers further apart
            far = cosine(inner(s, s, slice(0, -DISTANT), slice(DISTANT, None)), norms[m][:-DISTANT], norms[m][DISTANT:])
            rows.extend(("distant", m, i, c) for i, c in enumerate(far.tolist()))
    for a, b in same_layer_pairs(stacks):
        sa, sb = stacks[a], stacks[b]
        ip = inner(sa, sb, slice(None), slice(None)) if sa.shape == sb.shape else inner_transposed(sa, sb)
        cos = cosine(ip, norms[a], norms[b])
        rows.extend(("same_layer", f"{a}*{b}", i, c) for i, c in enumerate(cos.tolist()))
    return rows


DISTANT = 2
"""Layers apart in a ``distant`` cosine (layer i with layer i + 2): what adjacency is read against."""


def probe_similarities(
    stacks: Mapping[str, ModuleStack],
    norms: Mapping[str, torch.Tensor],
    probe_stacks: Mapping[str, ModuleStack],
    probe_norms: Mapping[str, torch.Tensor],
) -> list[tuple[str, str, int, float]]:
    """(``probe``, module, layer, cosine) of each gradient with the same layer and module of another
    sample's, the run's probe: how aligned the gradients of different samples are anyway, the null
    the same-sample cosines are read against. Gradients of two texts of different lengths compare
    through (T_a x T_b) matrices like any other pair."""
    rows: list[tuple[str, str, int, float]] = []
    for m, s in stacks.items():
        other = probe_stacks.get(m)
        if other is None:
            continue
        cos = cosine(inner(s, other, slice(None), slice(None)), norms[m], probe_norms[m])
        rows.extend(("probe", m, i, c) for i, c in enumerate(cos.tolist()))
    return rows


def pair_definition(shape_a: tuple[int, int], shape_b: tuple[int, int]) -> str | None:
    """``flat`` (same shape), ``transposed`` (b is a's transpose in shape), or ``None``."""
    if shape_a == shape_b:
        return "flat"
    if shape_a == shape_b[::-1]:
        return "transposed"
    return None


def same_layer_pairs(stacks: Mapping[str, ModuleStack]) -> list[tuple[str, str]]:
    """The q*o / k*v pairs present whose gradients can be compared (see the module docstring)."""
    return [
        (a, b)
        for a, b in SAME_LAYER_PAIRS
        if a in stacks and b in stacks and pair_definition(stacks[a].shape, stacks[b].shape)
    ]


def same_layer_notes(shapes: Mapping[str, tuple[int, int]], modules: Sequence[str]) -> dict[str, str]:
    """For the manifest: how each same-layer pair is defined for this model, or why it is absent."""
    notes: dict[str, str] = {}
    for a, b in SAME_LAYER_PAIRS:
        if a not in modules or b not in modules:
            continue
        (ma, na), (mb, nb) = shapes[a], shapes[b]
        definition = pair_definition(shapes[a], shapes[b])
        if definition == "flat":
            notes[f"{a}*{b}"] = f"cosine of the flattened [out, in] gradients ({ma}x{na})"
        elif definition == "transposed":
            notes[f"{a}*{b}"] = (
                f"cosine of G_{a} and G_{b} transposed: {a} is {ma}x{na} and {b} is {mb}x{nb}, so G_{b}^T maps "
                f"the same spaces as G_{a} ({na} -> {ma})"
            )
        else:
            notes[f"{a}*{b}"] = f"not computed: {a} is {ma}x{na}, {b} is {mb}x{nb}"
    return notes
