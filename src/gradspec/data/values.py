"""Numbers read from records: a score a record holds is used only when it is a finite number."""

from __future__ import annotations

import math
from typing import Any


def finite_number(value: Any) -> float | None:
    """A usable score, or ``None`` (missing, not a number, NaN or infinite, a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits: beyond any float, so no usable score
        return None
    return number if math.isfinite(number) else None


def numeric_value(value: Any) -> float | None:
    """``finite_number``, or a finite number written as text ("2.06": CSV cells, numbers stored as strings)."""
    number = finite_number(value)
    if number is not None or not isinstance(value, str):
        return number
    try:
        parsed = float(value.strip())
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) else None
