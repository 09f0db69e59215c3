"""``gradspec score``: every input record written back with the requested metrics added.

One output record per input record, in file order. A record that could not be scored keeps
``null`` for that metric and says why in ``score_errors`` ({metric: reason}); flagged values
are listed in ``score_flags``. Every output carries its ``sample_id``, the id ``compute``
gives the same record, so scores and gradient runs join on it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from gradspec.config.score import ScoreConfig
from gradspec.data import Dataset, load_dataset
from gradspec.errors import grouped
from gradspec.files import check_output_file, write_records
from gradspec.model import LoadedModel
from gradspec.score import difficulty, gradient, ifd, instag, length, lexical, reward, target  # noqa: F401 (registration)
from gradspec.score.context import ScoreContext
from gradspec.score.judge.cache import check_cache_file
from gradspec.score.outcome import Scored
from gradspec.score.registry import SCORERS, Scorer
from gradspec.score.state import ScoreState


def merge(value: Any, sample_id: str, results: Mapping[str, Scored | None]) -> dict[str, Any]:
    """The record as read, with ``sample_id``, each metric's fields, errors and flags."""
    record = dict(value) if isinstance(value, Mapping) else {"record": value}
    record["sample_id"] = sample_id
    errors: dict[str, str] = {}
    flags: list[str] = []
    for metric, scored in results.items():
        if scored is None:
            continue
        record.update(scored.fields)
        if scored.error:
            errors[metric] = scored.error
        flags.extend(scored.flags)
    record["score_errors"] = errors or None
    record["score_flags"] = flags or None
    return record


def score(config: ScoreConfig, loaded: LoadedModel | None = None) -> dict[str, Any]:
    """Score ``config.source`` into ``config.out``; returns a summary (counts, errors by metric).

    ``loaded``: the causal LM, when the caller has it loaded already.
    """
    check_output_file(config.out)
    if config.judging.judge_cache is not None:
        check_cache_file(config.judging.judge_cache)
    source = config.source
    dataset = load_dataset(source.data, source.field_map, source.limit)
    state = ScoreState(config, dataset.sha256)
    try:
        results = _score_all(config, dataset, state, loaded)
        records = []
        for item, row in dataset.with_rows():
            value = row.value if row.error is None else (row.raw_text or "")
            records.append(merge(value, item.sample_id, {m: results[m].get(item.index) for m in config.metrics}))
        write_records(config.out, records)
    finally:
        state.release()
    return summarise(records, config.metrics, Path(config.out))


def _score_all(
    config: ScoreConfig, dataset: Dataset, state: ScoreState, loaded: LoadedModel | None
) -> dict[str, dict[int, Scored]]:
    """Each metric's results: read back when finished before, else computed and kept."""
    ctx = ScoreContext(config, dataset, loaded)
    indices = {item.index for item in dataset.items}
    results: dict[str, dict[int, Scored]] = {}
    try:
        for name in config.metrics:
            scorer = SCORERS[name]
            done = state.finished(name, indices, scorer.fields)
            if done is None:
                done = in_parts(ctx, state, scorer) if scorer.per_record else scorer.run(ctx, dataset.items)
                state.keep(name, done)
                ctx.forget()
            results[name] = done
    finally:
        ctx.close()
    return results


PART_SECONDS = 60.0
"""About how long one kept part of a metric takes: the most an interruption loses."""
FIRST_PART, MOST_PART = 8, 4096
"""Records in a metric's first part, and in its largest (each part grows at most fourfold)."""


def in_parts(ctx: ScoreContext, state: ScoreState, scorer: Scorer) -> dict[int, Scored]:
    """A per-record metric over the records its kept parts lack, one part at a time, each kept as
    it is done; parts are sized to take about ``PART_SECONDS`` at the rate measured so far."""
    done = state.parts(scorer.name, scorer.fields)
    rest = [item for item in ctx.dataset.items if item.index not in done]
    total, show = len(ctx.dataset.items), ctx.config.progress
    bar = tqdm(total=total, initial=len(done), desc=scorer.name, unit="record", disable=not show, dynamic_ncols=True)
    size, ctx.in_parts = FIRST_PART, True
    try:
        while rest:
            part, rest = rest[:size], rest[size:]
            start = time.monotonic()
            got = scorer.run(ctx, part)
            state.keep_part(scorer.name, got)
            done.update(got)
            bar.update(len(part))
            fits = len(part) * PART_SECONDS / max(time.monotonic() - start, 1e-3)
            size = int(min(max(fits, FIRST_PART), 4 * size, MOST_PART))
    finally:
        ctx.in_parts = False
        bar.close()
    return done


def summarise(records: list[dict[str, Any]], metrics: tuple[str, ...], out: Path) -> dict[str, Any]:
    """Counts of scored and failed records per metric, the commonest reasons (each with a record
    it happened to, and how many more are like it), and flags."""
    failures: dict[str, list[str]] = {m: [] for m in metrics}
    flags: Counter[str] = Counter()
    for r in records:
        for metric, reason in (r["score_errors"] or {}).items():
            failures[metric].append(reason)
        flags.update(r["score_flags"] or [])
    summary: dict[str, Any] = {"out": str(out), "records": len(records), "metrics": {}}
    for m in metrics:
        n_failed = len(failures[m])
        summary["metrics"][m] = {"scored": len(records) - n_failed, "failed": n_failed}
        if n_failed:
            summary["metrics"][m]["reasons"] = {reason: n for n, reason in grouped(failures[m])}
    summary["flags"] = dict(flags)
    return summary
