"""Cost model that picks the cheapest exact route for gradients G = Delta^T X (d_out x d_in).

Every route gives the same numbers to round-off; only the cost differs.

* Singular values: a core C is either ``formed`` (G itself) or ``reduced`` (X^T's thin QR,
  shared by every projection that reads X, then Delta^T R_x^T, d_out x T); its singular values
  are the square roots of the eigenvalues of its smaller Gram matrix (``singular.py``).
  Reducing pays when T is well below d_in; at T close to d_in the QR costs more than it
  saves, and a formed G also serves the cosines.
* Inner products between same-shaped gradients across layers: ``factored``
  (sum((D1 D2^T) * (X1 X2^T)), ~2 T^2 (d_in + d_out) per pair) or ``formed``
  (G once per layer, then a dot product per pair); a G already formed for the singular values
  is reused at no cost.

Costs are flops weighted by how fast each kind runs relative to a matrix product; the weights
were measured on this project's 2-core CPU at the default model's sizes (a QR 3.5x, the
symmetric tridiagonal reduction 4x slower per flop than a GEMM) and only need to be roughly
right: they decide between routes whose costs differ by much more near the switch points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Route = Literal["factored", "formed"]
SigmaRoute = Literal["formed", "reduced"]


QR_WEIGHT = 3.5
EIGH_WEIGHT = 4.0


def eigh_flops(n: int) -> float:
    """Householder tridiagonalisation of a symmetric n x n matrix (eigenvalues only), ~4n^3/3."""
    return 4.0 * n**3 / 3.0


def gram_sigma_cost(m: int, n: int) -> float:
    """Weighted cost of the singular values of an m x n core: its smaller Gram, then eigenvalues."""
    b = min(m, n)
    return 2.0 * m * n * b + EIGH_WEIGHT * eigh_flops(b)


def qr_flops(rows: int, cols: int) -> float:
    """Householder QR (R only) of a rows x cols matrix, rows >= cols."""
    return 2.0 * rows * cols * cols - 2.0 * cols**3 / 3.0


def sigma_route(n_tokens: int, d_in: int, d_outs: Sequence[int]) -> SigmaRoute:
    """Route for the singular values of every projection that reads one (T, d_in) input."""
    t = n_tokens
    if t >= d_in:
        return "formed"
    form = [2.0 * t * d_in * d for d in d_outs]
    formed = sum(f + gram_sigma_cost(d, d_in) for f, d in zip(form, d_outs))
    # A reduced core leaves the cosines to make G themselves when that is their cheaper route.
    for_cosines = sum(f for f, d in zip(form, d_outs) if inner_product_route(t, d_in, d) == "formed")
    reduced = QR_WEIGHT * qr_flops(d_in, t) + for_cosines + sum(2.0 * t * t * d + gram_sigma_cost(d, t) for d in d_outs)
    return "reduced" if reduced < formed else "formed"


def inner_product_route(n_tokens: int, d_in: int, d_out: int) -> Route:
    """Cheaper route for inner products of same-shaped gradients taken over T tokens."""
    factored = n_tokens * n_tokens * (d_in + d_out)
    formed = n_tokens * d_in * d_out
    return "factored" if factored < formed else "formed"
