"""Comparisons used by several test files; they report every failing (layer, module)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from gradspec.capture import SampleFactors
from gradspec.prompting import Encoded
from gradspec.spectra import METRICS, SampleSpectra

from oracles import oracle_cosine, oracle_metrics


def random_samples(n_tokens: Sequence[int], vocab: int = 256, seed: int = 1) -> list[Encoded]:
    """Random token sequences whose last two thirds are the response."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(n_tokens):
        ids = torch.randint(3, vocab, (n,), generator=g).tolist()
        out.append(Encoded(f"s{i}", i, ids, [t >= n // 3 for t in range(n)], n // 3, False))
    return out


def compare_to_oracle(
    spectra: SampleSpectra,
    grads: Mapping[tuple[int, str], torch.Tensor],
    rel: float,
    cos_abs: float,
    metrics: Sequence[str] = METRICS,
) -> list[str]:
    """Every metric and cosine outside tolerance, as readable lines (empty when all agree)."""
    bad: list[str] = []
    for (layer, module), g in grads.items():
        want = oracle_metrics(g)
        for name in metrics:
            ours = float(spectra.metrics[module][name][layer])
            if abs(ours - want[name]) > rel * max(abs(want[name]), 1e-30):
                bad.append(f"layer {layer} {module} {name}: ours {ours:.8g} oracle {want[name]:.8g}")
    for kind, module, layer, cos in spectra.similarity:
        if kind == "adjacent":
            want_cos = oracle_cosine(grads[(layer, module)], grads[(layer + 1, module)])
        else:
            a, b = module.split("*")
            ga, gb = grads[(layer, a)], grads[(layer, b)]
            # Different shapes (Gemma 3's q and o): b's gradient transposed maps the same spaces.
            want_cos = oracle_cosine(ga, gb if gb.shape == ga.shape else gb.T)
        if abs(cos - want_cos) > cos_abs:
            bad.append(f"layer {layer} {kind} {module}: ours {cos:.6f} oracle {want_cos:.6f}")
    return bad


def factors_close(a: SampleFactors, b: SampleFactors, atol: float) -> list[str]:
    """Keys whose gradients G = delta^T x differ by more than ``atol`` relative to |G|."""
    bad = []
    for key in a.x:
        ga = a.delta[key].double().T @ a.x[key].double()
        gb = b.delta[key].double().T @ b.x[key].double()
        err = float((ga - gb).norm() / max(float(gb.norm()), 1e-30))
        if err > atol:
            bad.append(f"{key}: relative difference {err:.3g}")
    return bad
