"""Gradient metrics written back to the records: the mean nuclear norm and effective rank of each
sample's gradients (``gradient``), and ``grad_quality`` with its parts (``score/grad_quality.py``).

They come from a run on the same file (``--gradient-run``, or one computed here with the
scoring model and template), joined on ``sample_id``: a record the run skipped or failed gets
the run's reason, never a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gradspec.data import Record
from gradspec.score.context import ScoreContext
from gradspec.score.outcome import Scored, failed
from gradspec.score.registry import register_scorer

GRADIENT_FIELDS = ("nuclear_norm", "effective_rank")
QUALITY_FIELDS = ("grad_quality", "grad_quality_rank", "grad_quality_norm")


def _from_run(ctx: ScoreContext, records: Sequence[Record], fields: tuple[str, ...], parts: bool) -> dict[int, Scored]:
    table, reasons = ctx.gradient_table()
    out: dict[int, Scored] = {}
    for r in records:
        if r.sample_id not in table.index:
            why = reasons.get(r.sample_id, "not in the run (was it computed on this file?)")
            out[r.index] = failed(fields, why if f"record {r.index}:" in why else f"record {r.index}: {why}")
            continue
        row = table.loc[r.sample_id]
        names = [*fields, *(c for c in table.columns if parts and c.startswith(("erank_z_", "nuclear_z_")))]
        values = {n: float(row[n]) if math.isfinite(float(row[n])) else None for n in names}
        out[r.index] = Scored(values)
    return out


@register_scorer("gradient", GRADIENT_FIELDS, needs_model=True)
def gradient_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    return _from_run(ctx, records, GRADIENT_FIELDS, parts=False)


@register_scorer("grad_quality", QUALITY_FIELDS, needs_model=True)
def grad_quality_scores(ctx: ScoreContext, records: Sequence[Record]) -> dict[int, Scored]:
    return _from_run(ctx, records, QUALITY_FIELDS, parts=True)
