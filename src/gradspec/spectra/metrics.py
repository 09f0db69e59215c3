"""Scalar summaries of a gradient's singular values.

Effective rank is Roy and Vetterli's exp(-sum p log p) with p = sigma / sum(sigma). A zero
gradient has no defined effective rank or stable rank; those come back as NaN here and are
stored as null, never as 0 or 1.
"""

from __future__ import annotations

import torch

ZERO_RTOL = 2.0**-16
"""A gradient whose Frobenius norm is at most this times the largest of its sample's gradients
(every layer and projection) is zero: 256 units of float32 round-off (2^-24), far above the
noise a gradient that is zero in exact arithmetic comes out with (q and k when a single position
attends: measured 0 to 1e-7 of the largest, by CPU kernel), far below any real one (the smallest
seen on real data is 6e-3 of the largest). Such a gradient's singular values are set to 0, so its
norms are 0, its ranks and its cosines undefined, the same on every machine. In bfloat16 and
float16 the round-off of a zero gradient can reach this level: measure in float32 (the default)."""


def zero_small_gradients(sigma: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``sigma`` (module -> (L, k)) with the singular values of every gradient at round-off level
    (``ZERO_RTOL``) set to 0."""
    frob = {m: s.double().square().sum(-1).sqrt() for m, s in sigma.items()}
    scale = max((float(f.max()) for f in frob.values() if f.numel()), default=0.0)
    if scale <= 0:
        return sigma
    out = {}
    for m, s in sigma.items():
        small = frob[m] <= ZERO_RTOL * scale
        out[m] = torch.where(small.unsqueeze(-1), torch.zeros_like(s), s) if bool(small.any()) else s
    return out


def spectral_metrics(sigma: torch.Tensor) -> dict[str, torch.Tensor]:
    """Metrics of (..., k) non-negative singular values; each value is (...)."""
    s = sigma.double().clamp_min(0)
    nuclear = s.sum(-1)
    spectral = s.amax(-1) if s.shape[-1] else torch.zeros(s.shape[:-1], dtype=s.dtype)
    frob2 = (s * s).sum(-1)
    p = s / nuclear.unsqueeze(-1)
    entropy = -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(-1)
    undefined = nuclear <= 0
    nan = torch.full_like(nuclear, float("nan"))
    return {
        "nuclear_norm": nuclear,
        "effective_rank": torch.where(undefined, nan, entropy.exp()),
        "frobenius_norm": frob2.sqrt(),
        "spectral_norm": spectral,
        "stable_rank": torch.where(undefined, nan, frob2 / (spectral * spectral)),
    }
