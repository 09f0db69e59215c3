"""InsTag: an LLM judge lists the instruction's intention tags; ``instag`` is their count."""

from __future__ import annotations

from collections.abc import Sequence

from gradspec.data import Record
from gradspec.score.context import ScoreContext
from gradspec.score.judge.scores import FIELDS
from gradspec.score.judged import ask_judge
from gradspec.score.outcome import Scored
from gradspec.score.registry import register_scorer


@register_scorer("instag", FIELDS["instag"], needs_model=False)
def instag_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    return ask_judge("instag", ctx, records)
