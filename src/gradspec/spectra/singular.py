"""Singular values of G = Delta^T X from its factors, never with U or V.

If X^T = Q_x R_x (thin QR, T < d_in), then X = R_x^T Q_x^T with Q_x orthonormal, so
G = Delta^T R_x^T Q_x^T has the singular values of the reduced core G' = Delta^T R_x^T
(d_out x T): one QR per input, shared by every projection that reads it (q, k, v read one
X). ``routes.sigma_route`` decides whether that pays or G is formed directly.

Either way the core C (float64) gives its singular values as the square roots of the
eigenvalues of its smaller Gram matrix (C C^T or C^T C, float64). A symmetric eigensolver
does about half the work of an SVD. Squaring costs accuracy only at the bottom of the
spectrum: each sigma is exact to about sqrt(n eps64) sigma_1 ~ 3e-7 sigma_1 in the worst case
(measured: 1.4e-8 sigma_1 on real gradients), below the round-off of the float32 factors
every route starts from (the reference path forms G in float32 by autograd).

``sample.py`` runs this per layer, layers spread over the CPU threads (``threads.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from gradspec.spectra.solvers import choose, eigenvalues


def reduce_factor(a: torch.Tensor) -> torch.Tensor:
    """(..., T, n) -> (..., T, min(T, n)) with the same Gram matrix a a^T.

    Uses R^T of the QR of a^T, so a = R^T Q^T and a's row-space geometry is kept exactly.
    """
    t, n = a.shape[-2:]
    if t >= n:
        return a
    r = torch.linalg.qr(a.transpose(-1, -2), mode="r").R  # (..., T, T)
    return r.transpose(-1, -2)


def core(x_side: torch.Tensor, delta: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """delta^T x_side, formed in ``x_side``'s dtype: G itself when ``x_side`` is X, G' when it is
    X's QR core (shared by the projections that read one input). float32 is what autograd's
    ``.grad`` computes from the same float32 factors; float64 adds digits beyond the precision
    contract. ``out``: where to write it (one layer's slot of a float64 stack)."""
    d = delta.to(x_side.device, x_side.dtype).transpose(-1, -2)
    if out is not None and out.dtype != x_side.dtype:
        return out.copy_(torch.matmul(d, x_side))
    return torch.matmul(d, x_side, out=out)


def smaller_gram(c: torch.Tensor) -> torch.Tensor:
    """C C^T or C^T C, whichever is smaller: its eigenvalues are C's squared singular values."""
    ct = c.transpose(-1, -2)
    return c @ ct if c.shape[-2] <= c.shape[-1] else ct @ c


def gram_eigenvalues(c: torch.Tensor, out: torch.Tensor) -> None:
    """Ascending eigenvalues of the smaller Gram matrix of one core C into ``out``.

    On a CPU through numpy, whose OpenBLAS forms C C^T as a symmetric rank-k update and runs
    LAPACK's dsyevd faster per core than torch's build at these sizes (the two agree to
    round-off; the benchmark measures the difference). Elsewhere torch, on the device.
    """
    if c.device.type != "cpu":
        torch.linalg.eigvalsh(smaller_gram(c), out=out)
        return
    a = c.numpy()
    gram = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    out.numpy()[...] = np.linalg.eigvalsh(gram)


def sigma_from_eigenvalues(lam: torch.Tensor, rank_bound: int) -> torch.Tensor:
    """Ascending eigenvalues of a Gram matrix -> its core's descending singular values, the
    ``rank_bound`` first (round-off can make a zero eigenvalue slightly negative)."""
    return lam.flip(-1)[..., :rank_bound].clamp_min(0).sqrt()


def core_singular_values(c: torch.Tensor, rank_bound: int, solver: str = "batched") -> torch.Tensor:
    """Descending singular values of a core, keeping the ``rank_bound`` = min(T, d_in, d_out) first
    (``solver``: how the eigenvalues are taken, ``solvers.py``)."""
    gram = smaller_gram(c)
    return sigma_from_eigenvalues(eigenvalues(gram, choose(solver, gram.device, gram.shape[-1])), rank_bound)


def singular_values(x: torch.Tensor, delta: torch.Tensor, x_reduced: torch.Tensor | None = None) -> torch.Tensor:
    """sigma(delta^T x) for (..., T, d_in) and (..., T, d_out): (..., min(T, d_in, d_out)),
    descending, float64.

    ``x_reduced`` is ``x`` itself (G is formed) or ``reduce_factor(x.double())``, shared
    when several projections read one input; by default the QR route is taken.
    """
    xr = reduce_factor(x.double()) if x_reduced is None else x_reduced.double()
    return core_singular_values(core(xr, delta), min(x.shape[-2], x.shape[-1], delta.shape[-1]))
