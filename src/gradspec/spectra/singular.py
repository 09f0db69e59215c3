"""Singular values of G = Delta^T X from its factors, never with U or V.

If X^T = Q_x R_x (thin QR, T < d_in), then X = R_x^T Q_x^T with Q_x orthonormal, so
G = Delta^T R_x^T Q_x^T has the singular values of the reduced G' = Delta^T R_x^T
(d_out x T): one QR per input, shared by every projection that reads it (q, k, v read one
X). ``routes.sigma_route`` decides whether that pays or G is formed directly. Either way the
SVD runs in float64.

Measured on the default model at T = 511 (30 layers of q, 576 x 576): an SVD of G' takes
0.78 s, of G 0.97 s, but the QR that makes G' costs 0.36 s. Reducing Delta by QR as well, to
a T x T core, was slower; the eigenvalues of G^T G were no faster (0.75 s) and lose singular
values below ~3e-7 sigma_1, so the SVD is kept.
"""

from __future__ import annotations

import torch


def reduce_factor(a: torch.Tensor) -> torch.Tensor:
    """(..., T, n) -> (..., T, min(T, n)) with the same Gram matrix a a^T.

    Uses R^T of the QR of a^T, so a = R^T Q^T and a's row-space geometry is kept exactly.
    """
    t, n = a.shape[-2:]
    if t >= n:
        return a
    r = torch.linalg.qr(a.transpose(-1, -2), mode="r").R  # (..., T, T)
    return r.transpose(-1, -2)


def core(x_side: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """delta^T x_side in float64: G itself when ``x_side`` is X, G' when it is X's QR core
    (``x_side`` is float64 already: it is shared by the projections that read one input)."""
    return delta.double().transpose(-1, -2) @ x_side


def core_singular_values(c: torch.Tensor, rank_bound: int) -> torch.Tensor:
    """Descending singular values of a core, keeping the ``rank_bound`` = min(T, d_in, d_out) first."""
    return torch.linalg.svdvals(c)[..., :rank_bound]


def singular_values(x: torch.Tensor, delta: torch.Tensor, x_reduced: torch.Tensor | None = None) -> torch.Tensor:
    """sigma(delta^T x) for (..., T, d_in) and (..., T, d_out): (..., min(T, d_in, d_out)),
    descending, float64.

    ``x_reduced`` is ``x`` itself (G is formed) or ``reduce_factor(x.double())``, shared
    when several projections read one input; by default the QR route is taken.
    """
    xr = reduce_factor(x.double()) if x_reduced is None else x_reduced.double()
    return core_singular_values(core(xr, delta), min(x.shape[-2], x.shape[-1], delta.shape[-1]))
