"""Comparisons used by several test files; they report every failing (layer, module)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from gradspec.capture import SampleFactors
from gradspec.prompting import Encoded
from gradspec.spectra import METRICS, SampleSpectra
from gradspec.spectra.metrics import ZERO_RTOL
from gradspec.spectra.precision import NORM_RTOL
from gradspec.spectra.similarity import DISTANT

from oracles import oracle_cosine, oracle_metrics

LOSS_RTOL = NORM_RTOL
"""Two float32 computations of one loss by different paths (other batch shapes, padding, threads,
another CPU's kernels): relative, the precision contract's bound on norms and losses. Measured gaps
are ~1e-7 to 4e-7; a real mistake (a token off, a wrong mask) moves a loss by 1e-2 or more."""

PPL_RTOL = 2 * LOSS_RTOL * math.log(256)
"""The same for a ratio of two perplexities (IFD) on the tests' byte vocabulary: a perplexity is
exp(loss), so its relative error is the loss's absolute error, LOSS_RTOL times a loss of at most
about log(256) nats; a ratio of two adds both."""


def close_fields(a: Mapping[str, object], b: Mapping[str, object], rel: float) -> bool:
    """Whether two scored records' fields are equal: the same names, numbers within ``rel`` (two
    computation paths never agree bit for bit on every CPU), anything else exactly."""
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        numbers = isinstance(x, float) and isinstance(y, float)
        if not (math.isclose(x, y, rel_tol=rel) if numbers else x == y):  # type: ignore[arg-type]
            return False
    return True


class RefusingTokenizer:
    """A tokenizer that raises on any text holding a NUL byte, and otherwise is ``inner``: one record
    the tokenizer cannot take must cost that record only."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __call__(self, text: str, **kw: object) -> object:
        if "\x00" in text:
            raise ValueError("NUL byte in text\nsecond line")
        return self.inner(text, **kw)  # type: ignore[operator]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def random_samples(n_tokens: Sequence[int], vocab: int = 256, seed: int = 1) -> list[Encoded]:
    """Random token sequences whose last two thirds are the response."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(n_tokens):
        ids = torch.randint(3, vocab, (n,), generator=g).tolist()
        out.append(Encoded(f"s{i}", i, ids, [t >= n // 3 for t in range(n)], n // 3, False))
    return out


def oracle_differences(
    spectra: SampleSpectra, grads: Mapping[tuple[int, str], torch.Tensor], metrics: Sequence[str] = METRICS
) -> list[tuple[str, str, float, float]]:
    """(what, metric or "cosine", ours, oracle's) for every metric of every gradient and every cosine."""
    out: list[tuple[str, str, float, float]] = []
    # The contract's zero: a gradient at round-off level of its sample's largest is zero in exact
    # arithmetic (ZERO_RTOL), for the reference as for gradspec: norms 0, ranks and cosines undefined.
    scale = max(float(g.norm()) for g in grads.values())
    zero = {key for key, g in grads.items() if float(g.norm()) <= ZERO_RTOL * scale}
    for (layer, module), g in grads.items():
        want = oracle_metrics(g) if (layer, module) not in zero else ZERO_METRICS
        for name in metrics:
            ours = float(spectra.metrics[module][name][layer])
            out.append((f"layer {layer} {module} {name}", name, ours, want[name]))
    for kind, module, layer, cos in spectra.similarity:
        if kind in ("adjacent", "distant"):
            pair = ((layer, module), (layer + (1 if kind == "adjacent" else DISTANT), module))
            want_cos = oracle_cosine(grads[pair[0]], grads[pair[1]])
        else:
            a, b = module.split("*")
            pair = ((layer, a), (layer, b))
            ga, gb = grads[pair[0]], grads[pair[1]]
            want_cos = oracle_cosine(ga, gb)  # transposed where the shapes are (Gemma 3's q and o)
        out.append((f"layer {layer} {kind} {module}", "cosine", float(cos), math.nan if zero & set(pair) else want_cos))
    return out


ZERO_METRICS = {
    "nuclear_norm": 0.0, "frobenius_norm": 0.0, "spectral_norm": 0.0, "effective_rank": math.nan,
    "stable_rank": math.nan,
}  # fmt: skip


def deviation(metric: str, ours: float, want: float) -> float:
    """Relative for metrics, absolute for cosines: what the precision contract bounds (undefined on
    both sides is agreement; undefined on one side is not)."""
    if math.isnan(ours) or math.isnan(want):
        return 0.0 if math.isnan(ours) and math.isnan(want) else math.inf
    return abs(ours - want) if metric == "cosine" else abs(ours - want) / max(abs(want), 1e-30)


def compare_to_oracle(
    spectra: SampleSpectra,
    grads: Mapping[tuple[int, str], torch.Tensor],
    bounds: Mapping[str, float],
    metrics: Sequence[str] = METRICS,
) -> list[str]:
    """Every metric and cosine outside its bound (``bounds[metric]``, ``bounds["cosine"]``), as
    readable lines (empty when all agree)."""
    return [
        f"{what}: ours {ours:.8g} oracle {want:.8g}"
        for what, metric, ours, want in oracle_differences(spectra, grads, metrics)
        if deviation(metric, ours, want) > bounds[metric]
    ]


def factor_differences(a: SampleFactors, b: SampleFactors) -> dict[tuple[int, str], float]:
    """{key: |G_a - G_b| / |G_b|} of every gradient G = delta^T x of two samples' factors."""
    out = {}
    for key in a.x:
        ga = a.delta[key].double().T @ a.x[key].double()
        gb = b.delta[key].double().T @ b.x[key].double()
        out[key] = float((ga - gb).norm() / max(float(gb.norm()), 1e-30))
    return out


def factors_close(a: SampleFactors, b: SampleFactors, atol: float) -> list[str]:
    """Keys whose gradients differ by more than ``atol`` relative to |G|."""
    return [f"{key}: relative difference {err:.3g}" for key, err in factor_differences(a, b).items() if err > atol]
