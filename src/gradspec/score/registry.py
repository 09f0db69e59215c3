"""Data-quality metrics register here, one small file each, like the model adapters.

A metric is a function from the usable records to their ``Scored`` fields. What every metric
shares is done once, here: a record that could not be read gets every field of every metric
undefined, with the record's own reason, and never reaches a metric's function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gradspec.config.score import SCORE_METRICS
from gradspec.data import BadRecord, Record
from gradspec.score.outcome import Scored, failed

if TYPE_CHECKING:
    from gradspec.score.context import ScoreContext

ScoreFn = Callable[["ScoreContext", Sequence[Record]], dict[int, Scored]]


@dataclass(frozen=True)
class Scorer:
    """A registered data-quality metric: the record fields it writes, whether it needs the causal LM
    (``--model``) loaded, how it computes them, and whether a record's score depends on that record
    alone (``per_record``: it may then be computed in parts, each kept as it is done, so that an
    interrupted score resumes within the metric)."""

    name: str
    fields: tuple[str, ...]
    score: ScoreFn
    needs_model: bool
    per_record: bool = False

    def run(self, ctx: ScoreContext, items: Sequence[Record | BadRecord]) -> dict[int, Scored]:
        """Scores of every item: bad records failed with their reason, the rest by the metric."""
        out = {item.index: failed(self.fields, item.reason) for item in items if isinstance(item, BadRecord)}
        records = [item for item in items if isinstance(item, Record)]
        out.update(self.score(ctx, records) if records else {})
        odd = next((s for s in out.values() if not set(self.fields) <= set(s.fields)), None)
        if odd is not None:  # a kept metric is read back only when it holds its declared fields
            raise ValueError(f"metric '{self.name}' wrote fields {sorted(odd.fields)}, declared {list(self.fields)}")
        return out


SCORERS: dict[str, Scorer] = {}
"""Every data-quality metric by name (``score --metrics``); ``store.contract.METRICS`` are the gradient's."""


def register_scorer(
    name: str, fields: tuple[str, ...], needs_model: bool, per_record: bool = False
) -> Callable[[ScoreFn], ScoreFn]:
    """``@register_scorer("ifd", ("ifd", ...), needs_model=True)`` on ``fn(ctx, records) -> {index: Scored}``.

    ``per_record=True`` only for a metric whose records' scores do not depend on which other records
    are scored with them (not a z-score over the file, not a vocabulary fitted on it); what it
    computes once for all of them (a target's mean gradient, a second model) it keeps in ``ctx.memo``.
    """

    def register(fn: ScoreFn) -> ScoreFn:
        if name in SCORERS:
            raise ValueError(f"metric '{name}' is registered twice")
        if name not in SCORE_METRICS:  # the one list that --help, the YAML checks and the configs read
            raise ValueError(f"metric '{name}': add it to ScoreMetric in config/score.py first")
        SCORERS[name] = Scorer(name, fields, fn, needs_model, per_record)
        return fn

    return register
