"""Cost model that picks the cheaper exact route for a gradient G = Delta^T X (d_out x d_in).

Both routes of each choice give the same numbers to round-off; only the flop count differs.

* Singular values: an input X wider than the token count T is replaced by its T x T QR core
  (cost ~2 d_in T^2, shared by q, k and v), so the SVD runs on d_out x min(T, d_in).
* Inner products between same-shaped gradients across layers: ``factored``
  (sum((D1 D2^T) * (X1 X2^T)), ~2 T^2 (d_in + d_out) per pair) or ``formed``
  (G = Delta^T X once per layer, ~2 T d_in d_out, then a dot product per pair).
"""

from __future__ import annotations

from typing import Literal

Route = Literal["factored", "formed"]


def reduce_side(n_tokens: int, width: int) -> bool:
    """Whether a (T, width) factor should be replaced by its T x T QR core."""
    return n_tokens < width


def inner_product_route(n_tokens: int, d_in: int, d_out: int) -> Route:
    """Cheaper route for inner products of same-shaped gradients taken over T tokens."""
    factored = n_tokens * n_tokens * (d_in + d_out)
    formed = n_tokens * d_in * d_out
    return "factored" if factored < formed else "formed"
