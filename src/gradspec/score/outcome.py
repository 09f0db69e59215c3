"""What a metric gives one record: its fields, or why it could not be scored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scored:
    """Added fields of one record for one metric.

    A record that cannot be scored has its fields set to ``None`` and an ``error``: an
    undefined value is never written as 0. ``flags`` mark values that are defined but need a
    second look (an IFD above 1, a difficulty read from a labelled first line). ``transient``
    marks a failure that may not happen again (a judge that did not answer): a resumed score
    asks again.
    """

    fields: dict[str, Any]
    error: str | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)
    transient: bool = False


def failed(names: tuple[str, ...], reason: str, transient: bool = False, **known: Any) -> Scored:
    """Every field of ``names`` undefined (except those ``known``), with the reason."""
    return Scored({n: known.get(n) for n in names}, reason, transient=transient)
