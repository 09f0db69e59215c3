"""Rows of the ``samples`` table, and the rule every stored number follows: undefined is null."""

from __future__ import annotations

import math
from typing import Any


def number_or_null(value: float) -> float | None:
    """NaN and inf are stored as null: an undefined number is never a number."""
    return value if math.isfinite(value) else None


def sample_row(
    sample_id: str,
    index: int,
    status: str,
    reason: str | None = None,
    n_tokens: int | None = None,
    n_response_tokens: int | None = None,
    loss: float | None = None,
    n_prompt_tokens: int | None = None,
    truncated: bool | None = None,
    n_positions: int | None = None,
) -> dict[str, Any]:
    """One row of the ``samples`` table."""
    return {
        "sample_id": sample_id,
        "index": index,
        "status": status,
        "reason": reason,
        "n_tokens": n_tokens,
        "n_response_tokens": n_response_tokens,
        "loss": None if loss is None else number_or_null(loss),
        "n_prompt_tokens": n_prompt_tokens,
        "truncated": truncated,
        "n_positions": n_positions,
    }
