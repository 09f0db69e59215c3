"""What the judged metrics (InsTag, difficulty) share: the judge, its reply cache and the prompt.

The prompt is gradspec's own (``judge/prompts.py``) or the user's (``--instag-prompt``,
``--difficulty-prompt``); replies go through the reply cache and the bounded parsers (``judge/``).
"""

from __future__ import annotations

from collections.abc import Sequence

from gradspec.data import Record
from gradspec.score.context import ScoreContext
from gradspec.score.judge.prompts import load_template
from gradspec.score.judge.scores import judged_scores
from gradspec.score.outcome import Scored


def ask_judge(kind: str, ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    """``kind`` (instag or difficulty) of every record, asked of ``--judge`` or re-read (``--reuse-raw``)."""
    judging = ctx.config.judging
    judge = ctx.judge()
    own_prompt = judging.instag_prompt if kind == "instag" else judging.difficulty_prompt
    return judged_scores(
        kind,
        records,
        ctx.raw_values,
        judge,
        load_template(kind, own_prompt),
        ctx.reply_cache() if judge is not None else None,
        judging.reuse_raw,
        ctx.config.progress,
    )
