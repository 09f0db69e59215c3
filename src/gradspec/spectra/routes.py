"""Cost model that picks the cheapest exact route for gradients G = Delta^T X (d_out x d_in).

Every route gives the same numbers to round-off; only the flop count differs.

* Singular values: either ``formed`` (G, then an SVD of d_out x d_in) or ``reduced`` (X^T's
  thin QR, shared by every projection that reads X, then Delta^T R_x^T, d_out x T, and its
  SVD). Reducing pays when T is well below d_in; at T close to d_in the QR costs more than it
  saves (measured on the default model at T = 511, d = 576: the QR took 0.36 s per input for
  a few percent less SVD work).
* Inner products between same-shaped gradients across layers: ``factored``
  (sum((D1 D2^T) * (X1 X2^T)), ~2 T^2 (d_in + d_out) per pair) or ``formed``
  (G once per layer, then a dot product per pair); a G already formed for the singular values
  is reused at no cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Route = Literal["factored", "formed"]
SigmaRoute = Literal["formed", "reduced"]


def svd_flops(m: int, n: int) -> float:
    """Golub-Kahan bidiagonalisation of an m x n matrix (values only), ~4ab^2 - 4b^3/3."""
    a, b = max(m, n), min(m, n)
    return 4.0 * a * b * b - 4.0 * b**3 / 3.0


def qr_flops(rows: int, cols: int) -> float:
    """Householder QR (R only) of a rows x cols matrix, rows >= cols."""
    return 2.0 * rows * cols * cols - 2.0 * cols**3 / 3.0


def sigma_route(n_tokens: int, d_in: int, d_outs: Sequence[int]) -> SigmaRoute:
    """Route for the singular values of every projection that reads one (T, d_in) input."""
    t = n_tokens
    formed = sum(2.0 * t * d_in * d + svd_flops(d, d_in) for d in d_outs)
    if t >= d_in:
        return "formed"
    reduced = qr_flops(d_in, t) + sum(2.0 * t * t * d + svd_flops(d, t) for d in d_outs)
    return "reduced" if reduced < formed else "formed"


def inner_product_route(n_tokens: int, d_in: int, d_out: int) -> Route:
    """Cheaper route for inner products of same-shaped gradients taken over T tokens."""
    factored = n_tokens * n_tokens * (d_in + d_out)
    formed = n_tokens * d_in * d_out
    return "factored" if factored < formed else "formed"
