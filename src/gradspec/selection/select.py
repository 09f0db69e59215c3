"""``gradspec select``: the highest and lowest records by one score, as the field's splits are made.

Undefined values (missing, null, NaN, not a number) are dropped, and so are IFD values above 1
(the prompt made the response harder: Cherry LLM drops them). Ties keep file order. With
``match_length`` the high and low groups are drawn bin by bin over response length, so both
have the same length distribution: length alone moves gradient norms and ranks.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gradspec.analysis.grad_quality import grad_quality
from gradspec.config.selection import GRAD_QUALITY, SelectConfig
from gradspec.data import Record, load_dataset
from gradspec.data.values import finite_number
from gradspec.errors import ConfigError
from gradspec.files import write_json_atomic
from gradspec.store.query import open_run


@dataclass(frozen=True)
class Candidate:
    index: int
    value: float
    length: float
    record: dict[str, Any]


def response_length(record: Mapping[str, Any], item: Record) -> float:
    """Response tokens where ``score --metric length`` stored them, else characters."""
    tokens = finite_number(record.get("response_tokens"))
    return tokens if tokens is not None else float(len(item.response))


def highest(cands: Sequence[Candidate], n: int) -> list[Candidate]:
    return sorted(cands, key=lambda c: (-c.value, c.index))[:n]


def lowest(cands: Sequence[Candidate], n: int) -> list[Candidate]:
    return sorted(cands, key=lambda c: (c.value, c.index))[:n]


def chunks(items: Sequence[Candidate], k: int) -> list[list[Candidate]]:
    """``k`` consecutive, near-equal parts (the first ones one longer)."""
    size, extra = divmod(len(items), k)
    out, start = [], 0
    for i in range(k):
        end = start + size + (1 if i < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return out


def matched(cands: Sequence[Candidate], n: int, bins: int) -> tuple[list[Candidate], list[Candidate]]:
    """High and low groups of ``n`` each, drawn per response-length bin in proportion to its size."""
    by_length = sorted(cands, key=lambda c: (c.length, c.index))
    parts = [p for p in chunks(by_length, min(bins, max(1, len(cands)))) if p]
    capacity = [len(p) // 2 for p in parts]
    if sum(capacity) < n:
        raise ConfigError(f"--match-length: only {sum(capacity)} pairs can be matched, asked for {n}")
    share = [n * len(p) / len(cands) for p in parts]
    take = [min(int(s), c) for s, c in zip(share, capacity)]
    order = sorted(range(len(parts)), key=lambda i: share[i] - int(share[i]), reverse=True)
    while sum(take) < n:  # largest remainders first, then wherever room is left
        i = next(i for i in order if take[i] < capacity[i])
        take[i] += 1
        order.remove(i)
        order.append(i)
    high: list[Candidate] = []
    low: list[Candidate] = []
    for part, k in zip(parts, take):
        high += highest(part, k)
        low += lowest(part, k)
    return highest(high, n), lowest(low, n)


def _stats(group: Sequence[Candidate]) -> dict[str, Any]:
    if not group:
        return {"n": 0}
    return {
        "n": len(group),
        "mean": statistics.fmean(c.value for c in group),
        "min": min(c.value for c in group),
        "max": max(c.value for c in group),
        "median_length": statistics.median(c.length for c in group),
        "mean_length": statistics.fmean(c.length for c in group),
    }


def select(config: SelectConfig) -> dict[str, Any]:
    """Write the groups and ``<name>_selection.json``; return that summary."""
    dataset = load_dataset(config.data, config.field_map)
    from_run: dict[str, float] = {}
    if config.by == GRAD_QUALITY:
        scores = grad_quality(open_run(config.run))  # type: ignore[arg-type]
        from_run = dict(zip(scores["sample_id"], scores["grad_quality"]))
    cands: list[Candidate] = []
    dropped = {"undefined": 0, "ifd_above_1": 0, "unusable_record": 0}
    for item, row in dataset.with_rows():
        value = row.value
        if not isinstance(item, Record) or not isinstance(value, Mapping):
            dropped["unusable_record"] += 1
            continue
        if config.by == GRAD_QUALITY:
            value = {**value, GRAD_QUALITY: from_run.get(item.sample_id)}
        score = finite_number(value.get(config.by))
        if score is None:
            dropped["undefined"] += 1
        elif config.by.startswith("ifd") and score > 1:
            dropped["ifd_above_1"] += 1
        else:
            record = dict(value, sample_id=item.sample_id)
            cands.append(Candidate(item.index, score, response_length(value, item), record))
    if not cands:
        raise ConfigError(
            f"{dataset.path}: no record has a usable '{config.by}' value ({dropped['undefined']} undefined)"
        )

    name = config.name or dataset.path.stem
    groups: dict[str, list[Candidate]] = {}
    if config.match_length:
        groups[f"{name}_highest_{config.top}"], groups[f"{name}_lowest_{config.bottom}"] = matched(
            cands, config.top, config.length_bins
        )
    else:
        if config.top:
            groups[f"{name}_highest_{config.top}"] = highest(cands, config.top)
        if config.bottom:
            groups[f"{name}_lowest_{config.bottom}"] = lowest(cands, config.bottom)
    if config.quantiles:
        ordered = lowest(cands, len(cands))
        for i, part in enumerate(chunks(ordered, config.quantiles), start=1):
            groups[f"{name}_q{i}of{config.quantiles}"] = part

    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for group, members in groups.items():
        write_json_atomic(out_dir / f"{group}.json", [c.record for c in members])
    high = next((g for g in groups if "_highest_" in g), None)
    low = next((g for g in groups if "_lowest_" in g), None)
    overlap = len({c.index for c in groups[high]} & {c.index for c in groups[low]}) if high and low else 0
    summary = {
        "data": str(dataset.path),
        "by": config.by,
        "candidates": len(cands),
        "dropped": dropped,
        "match_length": config.match_length,
        "length_unit": "tokens" if any("response_tokens" in c.record for c in cands) else "characters",
        "overlap": overlap,
        "groups": {g: _stats(m) for g, m in groups.items()},
    }
    write_json_atomic(out_dir / f"{name}_selection.json", summary)
    return summary
