"""Data-quality metrics register here, one small file each, like the model adapters.

A metric is a function from the usable records to their ``Scored`` fields. What every metric
shares is done once, here: a record that could not be read gets every field of every metric
undefined, with the record's own reason, and never reaches a metric's function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gradspec.data import BadRecord, Record
from gradspec.score.outcome import Scored, failed

if TYPE_CHECKING:
    from gradspec.score.context import ScoreContext

ScoreFn = Callable[["ScoreContext", Sequence[Record]], dict[int, Scored]]


@dataclass(frozen=True)
class Metric:
    """A registered metric: the record fields it writes, and how it computes them."""

    name: str
    fields: tuple[str, ...]
    score: ScoreFn

    def run(self, ctx: ScoreContext, items: Sequence[Record | BadRecord]) -> dict[int, Scored]:
        """Scores of every item: bad records failed with their reason, the rest by the metric."""
        out = {item.index: failed(self.fields, item.reason) for item in items if isinstance(item, BadRecord)}
        records = [item for item in items if isinstance(item, Record)]
        out.update(self.score(ctx, records) if records else {})
        return out


METRICS: dict[str, Metric] = {}


def register_metric(name: str, fields: tuple[str, ...]) -> Callable[[ScoreFn], ScoreFn]:
    """``@register_metric("ifd", ("ifd", ...))`` on ``fn(ctx, records) -> {index: Scored}``."""

    def register(fn: ScoreFn) -> ScoreFn:
        if name in METRICS:
            raise ValueError(f"metric '{name}' is registered twice")
        METRICS[name] = Metric(name, fields, fn)
        return fn

    return register
