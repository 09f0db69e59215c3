"""The obviously correct, slow computation every fast path is checked against.

One sample at a time, weights unfrozen, the response loss's ``.grad`` of every projection's
weight, sliced for fused modules and turned to the [out, in] orientation, then
``torch.linalg.svdvals`` in float64 and cosines of flattened gradients.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from gradspec.model.adapters import LayerProjection
from gradspec.prompting import Encoded


def oracle_loss(model: torch.nn.Module, sample: Encoded) -> float:
    """One sample's mean response-token loss, by plain cross entropy on its own."""
    ids = torch.tensor([sample.input_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    mask = torch.tensor(sample.loss_mask[1:])
    logits = logits[:-1].to(torch.promote_types(logits.dtype, torch.float32))
    return float(F.cross_entropy(logits[mask], ids[0, 1:][mask]))


def oracle_gradients(
    model: torch.nn.Module, targets: Sequence[LayerProjection], sample: Encoded, tokens: range | None = None
) -> dict[tuple[int, str], torch.Tensor]:
    """{(layer, name): float64 gradient [d_out, d_in]} of one sample's mean response loss, or with
    ``tokens`` of those tokens' share of it (their summed loss over the response's token count)."""
    modules = {id(t.projection.module): t.projection.module for t in targets}
    for m in modules.values():
        m.weight.requires_grad_(True)
        m.weight.grad = None
    try:
        ids = torch.tensor([sample.input_ids])
        logits = model(input_ids=ids).logits[0]
        mask = torch.tensor(sample.loss_mask[1:])
        nll = F.cross_entropy(
            logits[:-1].to(torch.promote_types(logits.dtype, torch.float32)), ids[0, 1:], reduction="none"
        )
        if tokens is None:
            loss = nll[mask].mean()
        else:  # nll[i] is the loss of token i + 1
            loss = nll[tokens.start - 1 : tokens.stop - 1].sum() / mask.sum()
        loss.backward()
        grads: dict[tuple[int, str], torch.Tensor] = {}
        for t in targets:
            g = t.projection.module.weight.grad.double()
            if t.projection.layout == "conv1d":
                g = g.T  # Conv1D stores [in, out]
            if t.projection.out_index is not None:
                g = g[t.projection.out_index]
            grads[(t.layer, t.name)] = g
        return grads
    finally:
        for m in modules.values():
            m.weight.grad = None
            m.weight.requires_grad_(False)


def oracle_metrics(g: torch.Tensor) -> dict[str, float]:
    s = torch.linalg.svdvals(g.double())
    nuc = s.sum()
    p = s / nuc
    p = p[p > 0]
    return {
        "nuclear_norm": float(nuc),
        "effective_rank": float(torch.exp(-(p * p.log()).sum())),
        "frobenius_norm": float(torch.linalg.matrix_norm(g, "fro")),
        "spectral_norm": float(s[0]),
        "stable_rank": float((s * s).sum() / s[0] ** 2),
    }


def oracle_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos(G_a, G_b) over their entries; ``b`` transposed when it has ``a``'s shape transposed (Gemma 3's
    q and o: G_o^T maps the same spaces as G_q, as gradspec compares them)."""
    if a.shape != b.shape and a.shape == b.T.shape:
        b = b.T
    return float(torch.nn.functional.cosine_similarity(a.reshape(1, -1).double(), b.reshape(1, -1).double())[0])
