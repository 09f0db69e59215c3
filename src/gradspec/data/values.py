"""Numbers read from records: a score a record holds is used only when it is a finite number."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
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


KEEP = "keep"
"""The field ``filter`` (and ``select --keep-column``) write: whether a record is kept."""


def kept(value: Any) -> bool | None:
    """A ``keep`` field's verdict: True/False for a bool, 1/0 or their text ("true", "false", "1",
    "0": CSV cells, HF string columns); None for anything else, which the caller refuses by name."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


LENGTH_FIELDS = ("n_prompt_tokens", "n_response_tokens", "n_prompt_chars", "n_response_chars")
"""The counts ``score --metrics length`` writes (untruncated, under the template), which selection reads."""
FORMER_NAMES = {field: field.removeprefix("n_") for field in LENGTH_FIELDS}
"""Their names in files scored before 0.3 (``response_tokens``: the name of the window option too)."""


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """A field's value: the record's own key ``path`` first, else the dotted path through nested
    objects (``scores.DeitaQScorer.score``). A path that ends at an object with a ``score`` (the
    layout of OpenDataArena's scorers, ``{"scores": {"DeitaQScorer": {"score": 4.5}}}``) gives that
    score, so ``scores.DeitaQScorer`` reads it too. A length count is read under its former name in
    a file scored before the rename. None where the path leads nowhere."""
    if path not in record and FORMER_NAMES.get(path) in record:
        path = FORMER_NAMES[path]
    if path in record:
        value = record[path]
    else:
        value = record
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
    if isinstance(value, Mapping) and "score" in value:
        return value["score"]
    return value


def number_paths(record: Mapping[str, Any], prefix: str = "", depth: int = 3) -> Iterator[str]:
    """The dotted paths of ``record`` that hold a finite number, nested objects ``depth`` levels
    deep (OpenDataArena's ``scores.Scorer.score`` is three): what --by, --where and the explorer can
    read."""
    for key, value in record.items():
        path = f"{prefix}{key}"
        if finite_number(value) is not None:
            yield path
        elif isinstance(value, Mapping) and depth > 1:
            yield from number_paths(value, f"{path}.", depth - 1)


def numeric_fields(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Fields holding a number in at least one record (what --by can rank by), nested ones by their
    dotted path; ``source_index`` (select's own bookkeeping) left out."""
    names: dict[str, None] = {}
    for r in records:
        names.update((k, None) for k in number_paths(r) if k != "source_index")
    return list(names)
