"""Dtype rules shared by the stages: spectral maths never runs below float32."""

from __future__ import annotations

import torch


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or kept in float64 when it already is (bf16/fp16 are widened)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))
