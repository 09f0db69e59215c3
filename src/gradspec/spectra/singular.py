"""Singular values of G = Delta^T X from its factors, without forming d x d matrices.

If X^T = Q_x R_x (thin QR, T < d_in) then X = R_x^T Q_x^T with Q_x orthonormal, and likewise
for Delta; so sigma(G) = sigma(R_d R_x^T), a T x T problem. A side no wider than T is kept
as it is; with both sides kept this is the SVD of G itself. Only singular values are taken
(never U, V), in float64.
"""

from __future__ import annotations

import torch

from gradspec.spectra.routes import reduce_side


def reduce_factor(a: torch.Tensor) -> torch.Tensor:
    """(..., T, n) -> (..., T, min(T, n)) with the same Gram matrix a a^T.

    Uses R^T of the QR of a^T, so a = R^T Q^T and a's row space geometry is kept exactly.
    """
    t, n = a.shape[-2:]
    if not reduce_side(t, n):
        return a
    r = torch.linalg.qr(a.transpose(-1, -2), mode="r").R  # (..., T, T)
    return r.transpose(-1, -2)


def singular_values(
    x: torch.Tensor, delta: torch.Tensor, x_reduced: torch.Tensor | None = None
) -> torch.Tensor:
    """sigma(delta^T x) for (..., T, d_in) and (..., T, d_out), descending, float64.

    ``x_reduced`` may pass ``reduce_factor(x)`` when several projections share one input.
    """
    xr = reduce_factor(x.double()) if x_reduced is None else x_reduced
    dr = reduce_factor(delta.double())
    core = dr.transpose(-1, -2) @ xr  # (..., min(T, d_out), min(T, d_in))
    return torch.linalg.svdvals(core)
