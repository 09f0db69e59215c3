"""Difficulty: an LLM judge rates the instruction from 1 to 10 on its reply's first line."""

from __future__ import annotations

from collections.abc import Sequence

from gradspec.data import Record
from gradspec.score.context import ScoreContext
from gradspec.score.judge.scores import FIELDS
from gradspec.score.judged import ask_judge
from gradspec.score.outcome import Scored
from gradspec.score.registry import register_scorer


@register_scorer("difficulty", FIELDS["difficulty"], needs_model=False)
def difficulty_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    return ask_judge("difficulty", ctx, records)
