"""Scalar summaries of a gradient's singular values.

Effective rank is Roy and Vetterli's exp(-sum p log p) with p = sigma / sum(sigma). A zero
gradient has no defined effective rank or stable rank; those come back as NaN here and are
stored as null, never as 0 or 1.
"""

from __future__ import annotations

import torch


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
