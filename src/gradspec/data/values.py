"""Numbers read from records: a score a record holds is used only when it is a finite number."""

from __future__ import annotations

import math
from typing import Any


def finite_number(value: Any) -> float | None:
    """A usable score, or ``None`` (missing, not a number, NaN or infinite, a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
