"""``gradspec select``: groups of records by one score, as the field's splits are made.

Undefined values (missing, null, NaN, not a number) are dropped, and so are IFD values above 1
(the prompt made the response harder: Cherry LLM drops them); ``--min``/``--max`` drop values
outside a range. Ties keep file order. The highest and lowest groups can be matched in length:
``bins`` draws them bin by bin over response length (similar distributions), ``truncate`` pairs
them one to one and cuts each pair to its shorter member (identical distributions, token for
token, and no record lost). Every written record keeps its ``sample_id`` and its row in the
input (``source_index``).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gradspec.artifacts import SELECTION, read_marker, write_marker
from gradspec.artifacts.markers import marker_content
from gradspec.config.fields import flatten
from gradspec.config.selection import FITTING, GRAD_QUALITY, RANDOM, SelectConfig, Size
from gradspec.console import warn
from gradspec.data import Record, load_dataset
from gradspec.data.values import KEEP, finite_number, kept, lookup, numeric_fields, numeric_value
from gradspec.errors import ConfigError
from gradspec.files import under, write_json_atomic, write_records
from gradspec.score.grad_quality import grad_quality
from gradspec.selection.filtering import not_scored
from gradspec.store.query import open_run

WINDOW = "response_window"
"""The record field holding a record's own response window (``compute --record-windows`` reads it)."""
LEGACY_CUT = "response_tokens_untruncated"
"""Written beside the window by older versions, which put the window into ``response_tokens``."""


@dataclass(frozen=True)
class Candidate:
    index: int
    value: float
    length: float
    record: dict[str, Any]


def length_count(record: Mapping[str, Any], field: str) -> float | None:
    """A length count ``score --metrics length`` stored (``n_response_tokens``, ...), None without one."""
    return finite_number(lookup(record, field))


def response_length(record: Mapping[str, Any], item: Record) -> float:
    """Response tokens where ``score --metrics length`` stored them, else characters."""
    tokens = length_count(record, "n_response_tokens")
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


def fitting_length(c: Candidate, max_length: int | None) -> float:
    """The response tokens of a candidate that fit beside its prompt in ``max_length`` (all without one)."""
    prompt = length_count(c.record, "n_prompt_tokens")
    if max_length is None or prompt is None:
        return c.length
    return float(max(0, min(c.length, max_length - prompt)))


def fitting_tokens(record: Mapping[str, Any], item: Record, max_length: int | None) -> float | None:
    """``--by fitting_tokens``: the response tokens that fit beside the prompt (None without token lengths)."""
    if length_count(record, "n_response_tokens") is None or length_count(record, "n_prompt_tokens") is None:
        return None
    return fitting_length(Candidate(item.index, 0.0, response_length(record, item), dict(record)), max_length)


def residualised(cands: Sequence[Candidate]) -> list[Candidate]:
    """Each candidate's value minus its least-squares fit on log response and log prompt tokens (the
    part of the score length does not explain); refuses records without token lengths."""
    import numpy as np

    read = [(length_count(c.record, "n_response_tokens"), length_count(c.record, "n_prompt_tokens")) for c in cands]
    sizes = [(r, q) for r, q in read if r is not None and q is not None]
    missing = [c for c, (r, q) in zip(cands, read) if r is None or q is None]
    if missing:
        raise ConfigError(
            f"--residualise: record {missing[0].index} has no n_response_tokens/n_prompt_tokens; score the file with "
            "--metrics length first"
        )
    design = np.array([[1.0, np.log(max(r, 1.0)), np.log(max(q, 1.0))] for r, q in sizes])
    y = np.array([c.value for c in cands])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return [replace(c, value=float(v)) for c, v in zip(cands, y - design @ coef)]


def ranked(cands: Sequence[Candidate], descending: bool, strata: int | None) -> list[Candidate]:
    """Every candidate in the order a group takes them: by value (ties in file order), or with
    ``strata`` the best of each response-length stratum in turn (shortest stratum first)."""
    order = highest(cands, len(cands)) if descending else lowest(cands, len(cands))
    if not strata:
        return order
    by_length = sorted(cands, key=lambda c: (c.length, c.index))
    stratum = {c.index: k for k, part in enumerate(chunks(by_length, min(strata, len(cands)))) for c in part}
    queues: list[list[Candidate]] = [[] for _ in range(strata)]
    for c in order:
        queues[stratum[c.index]].append(c)
    out: list[Candidate] = []
    for rank in range(max(len(q) for q in queues)):
        out += [q[rank] for q in queues if rank < len(q)]
    return out


def take(order: Sequence[Candidate], size: Size, n_candidates: int, max_length: int | None) -> list[Candidate]:
    """A group's members from ``order``: the first N, or with a token budget each record in turn while
    the tokens that fit stay within it (a record with none that fits is passed over: no training sees it)."""
    budget = size.budget
    if budget is None:
        return list(order[: size.records(n_candidates)])
    out: list[Candidate] = []
    used = 0.0
    for c in order:
        tokens = fitting_length(c, max_length)
        if tokens < 1:
            continue
        if used + tokens > budget:
            break
        out.append(c)
        used += tokens
    return out


def label(size: Size) -> str:
    """A size as it appears in a group's file name (16000 tokens: 16000tokens)."""
    return str(size).replace(" ", "")


def truncation_matched(
    high: Sequence[Candidate], low: Sequence[Candidate], pairing: str, seed: int, max_length: int | None = None
) -> tuple[list[Candidate], list[Candidate], dict[str, Any]]:
    """Both groups with every record's window (``response_window``) set to the shorter length of its pair.

    The group with the shorter median length is sorted by length and paired one to one with the
    other, by rank of length or at random; both members of a pair get the pair's shorter length
    as their window, so the two groups' windows are the same multiset. With ``max_length`` a
    length counts only what fits beside the record's prompt: a window that did not fit would make
    the run skip one member and break its pair. A pair with no response token that fits beside
    both prompts cannot be measured: it is dropped, and the design says how many were. Each
    record keeps its length score (``n_response_tokens``) as it was.
    """
    if any(WINDOW in c.record or LEGACY_CUT in c.record for c in (*high, *low)):
        raise ConfigError("--match-length truncate: these records were cut to a partner's length already")
    if any(length_count(c.record, "n_response_tokens") is None for c in (*high, *low)):
        raise ConfigError(
            "--match-length truncate needs token lengths: score the file with --metrics length first "
            "(the n_response_tokens field), with the model and template the runs will use"
        )
    short_is_high = statistics.median(c.length for c in high) <= statistics.median(c.length for c in low)
    shorter, longer = (high, low) if short_is_high else (low, high)
    shorter_sorted = sorted(shorter, key=lambda c: (c.length, c.index))
    partners = sorted(longer, key=lambda c: (c.length, c.index))
    if pairing == "random":
        random.Random(seed).shuffle(partners)
    windows: dict[int, int] = {}
    empty = 0
    for a, b in zip(shorter_sorted, partners):
        window = int(min(fitting_length(a, max_length), fitting_length(b, max_length)))
        if window < 1:
            empty += 1
            continue
        windows[a.index] = windows[b.index] = window

    def cut(c: Candidate) -> Candidate:
        return replace(c, record={**c.record, WINDOW: windows[c.index]}, length=float(windows[c.index]))

    kept = [c for c in (*high, *low) if c.index in windows]
    design = {
        "pairing": pairing,
        "seed": seed if pairing == "random" else None,
        "pairs": len(windows) // 2,
        "pairs_dropped": empty,
        "shorter_group": "highest" if short_is_high else "lowest",
        "tokens_cut": int(sum(c.length for c in kept) - sum(windows.values())),
    }
    if empty:
        warn(
            f"--match-length truncate: {empty} pair(s) dropped: no response token fits beside both prompts in "
            f"--max-length {max_length}; {len(windows) // 2} pair(s) kept"
        )
    return [cut(c) for c in high if c.index in windows], [cut(c) for c in low if c.index in windows], design


def _stats(group: Sequence[Candidate], max_length: int | None = None, keyed: bool = True) -> dict[str, Any]:
    """A group's size, tokens that fit and lengths, and (``keyed``: when its key means something, not a
    random draw's) the mean, min and max of the key."""
    if not group:
        return {"n": 0}
    fit = {"tokens_that_fit": int(sum(fitting_length(c, max_length) for c in group))} if max_length else {}
    values = [c.value for c in group]
    key = {"mean": statistics.fmean(values), "min": min(values), "max": max(values)} if keyed else {}
    return (
        fit
        | {"n": len(group)}
        | key
        | {
            "median_length": statistics.median(c.length for c in group),
            "mean_length": statistics.fmean(c.length for c in group),
        }
    )


def dropped_by_input(value: Mapping[str, Any], index: int, path: Path) -> str | None:
    """Why a record whose input says ``keep: false`` is no candidate (None when it is kept or says nothing)."""
    if KEEP not in value:
        return None
    verdict = kept(value[KEEP])
    if verdict is None:
        raise ConfigError(
            f"{path}: record {index}: field '{KEEP}' is {value[KEEP]!r}, not true or false "
            "(give --ignore-keep to rank every record regardless)"
        )
    if verdict:
        return None
    reason = value.get("drop_reason")
    return "keep is false in the input" + (f" ({reason})" if reason else "")


def rejection(config: SelectConfig, score: float) -> tuple[str, str] | None:
    """(the dropped count it adds to, why) for a score that may not rank, None for a candidate's."""
    if config.by.startswith("ifd") and score > 1:
        return "ifd_above_1", f"{config.by} is {score:.4g}, above 1 (the prompt made the response harder)"
    if (config.minimum is not None and score < config.minimum) or (
        config.maximum is not None and score > config.maximum
    ):
        return "out_of_range", f"{config.by} is {score:.4g}, outside --min/--max"
    return None


def candidates(
    config: SelectConfig,
) -> tuple[list[Candidate], dict[str, int], list[dict[str, Any]], Path, dict[int, str]]:
    """Every record with a usable value of ``config.by``, what was dropped, every record, and why
    each record that is no candidate is not (by its ``source_index``)."""
    dataset = load_dataset(config.data, config.field_map)
    extra: dict[str, float] = {}
    if config.by == GRAD_QUALITY and config.run is not None:
        scores = grad_quality(open_run(config.run))
        extra = dict(zip(scores["sample_id"], scores["grad_quality"]))
    rng = random.Random(config.seed)
    cands: list[Candidate] = []
    records: list[dict[str, Any]] = []
    dropped = {"not_kept": 0, "undefined": 0, "ifd_above_1": 0, "out_of_range": 0, "unusable_record": 0}
    why: dict[int, str] = {}  # source_index -> why the record is no candidate
    for item, row in dataset.with_rows():
        value = row.value
        if not isinstance(item, Record) or not isinstance(value, Mapping):
            dropped["unusable_record"] += 1
            continue
        record = dict(value, sample_id=item.sample_id, source_index=item.index)
        if config.by == GRAD_QUALITY and config.run is not None:
            record[GRAD_QUALITY] = extra.get(item.sample_id)
        records.append(record)
        not_kept = None if config.ignore_keep else dropped_by_input(value, item.index, dataset.path)
        if not_kept is not None:
            dropped["not_kept"] += 1
            why[item.index] = not_kept
            continue
        if config.by == RANDOM:
            score: float | None = rng.random()
        elif config.by == FITTING:
            score = fitting_tokens(record, item, config.max_length)
        else:
            score = numeric_value(lookup(record, config.by))
        rejected = rejection(config, score) if score is not None else ("undefined", not_scored(record, config.by))
        if rejected is not None:
            dropped[rejected[0]] += 1
            why[item.index] = rejected[1]
        else:
            assert score is not None
            cands.append(Candidate(item.index, score, response_length(value, item), record))
    if not cands and records and dropped["not_kept"] == len(records):
        raise ConfigError(f"{dataset.path}: every record's keep is false: nothing to select (--ignore-keep ranks them)")
    if not cands and not dropped["out_of_range"]:
        fields = ", ".join(numeric_fields(records)[:30]) or "none"
        hint = " (score --metrics grad_quality writes it, or give --run)" if config.by == GRAD_QUALITY else ""
        raise ConfigError(
            f"{dataset.path}: no record has a usable '{config.by}' value ({dropped['undefined']} undefined){hint}; "
            f"numeric fields in the file: {fields}"
        )
    return cands, dropped, records, dataset.path, why


def select(config: SelectConfig) -> dict[str, Any]:
    """Write the groups and ``<name>_selection.json``; return that summary. Its ``files`` are names
    inside ``out_dir``, so the folder can be moved or read from any working directory."""
    cands, dropped, records, path, why = candidates(config)
    if config.residualise:
        cands = residualised(cands)
    name = config.name or path.stem
    # A share becomes the count it means here (its group's name says the count); a budget stays a budget.
    top, bottom = (size if size.budget else Size(size.records(len(cands))) for size in (config.top, config.bottom))
    # A random draw has no highest: its group is NAME_random_N (still ``highest`` to references like @sel/highest).
    high_name = f"{name}_{'random' if config.by == RANDOM else 'highest'}_{label(top)}"
    low_name = f"{name}_lowest_{label(bottom)}"
    groups, design = drawn(config, cands, top, bottom, high_name, low_name)
    if config.quantiles:
        ordered = lowest(cands, len(cands))
        for i, part in enumerate(chunks(ordered, config.quantiles), start=1):
            groups[f"{name}_q{i}of{config.quantiles}"] = part
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for group, members in groups.items():
        file = under(out_dir, f"{group}.json")
        write_json_atomic(file, [c.record for c in members])
        files[group.removeprefix(f"{name}_").split("_")[0]] = file.name
        if group == high_name and config.by == RANDOM:
            files["highest"] = file.name
    if config.keep_column:
        chosen = {c.index for c in groups[high_name]} if top else {c.index for c in cands}
        kept = keep_column(records, chosen, why, f"not in the highest {top} by {config.by}" if top else None)
        files["kept"] = write_records(under(out_dir, f"{name}_kept.jsonl"), kept).name
    high, low = groups.get(high_name), groups.get(low_name)
    in_tokens = any(length_count(c.record, "n_response_tokens") is not None for c in cands)
    summary = marker_content(SELECTION, flatten(config)) | {
        "data": str(path),
        "by": config.by,
        "candidates": len(cands),
        "dropped": dropped,
        "range": {"minimum": config.minimum, "maximum": config.maximum},
        "match_length": config.match_length,
        "length_design": design or None,
        "length_unit": "tokens" if in_tokens else "characters",
        "overlap": len({c.index for c in high} & {c.index for c in low}) if high and low else 0,
        "groups": {g: _stats(m, config.max_length, config.by != RANDOM) for g, m in groups.items()},
        "files": files,
    }
    write_json_atomic(under(out_dir, f"{name}_selection.json"), summary)
    # The folder's marker lists every selection written into it (several names may share one folder).
    before = read_marker(SELECTION.marker_path(out_dir)) or {}
    listed = {**(before.get("selections") or {}), name: f"{name}_selection.json"}
    write_marker(out_dir, SELECTION, {}, selections=listed)
    return summary


def drawn(
    config: SelectConfig, cands: list[Candidate], top: Size, bottom: Size, high_name: str, low_name: str
) -> tuple[dict[str, list[Candidate]], dict[str, Any]]:
    """The highest and lowest groups (length-matched as asked) and the length design they were drawn by."""
    groups: dict[str, list[Candidate]] = {}
    if config.match_length == "bins":
        groups[high_name], groups[low_name] = matched(cands, top.records(len(cands)), config.length_bins)
        return groups, {}
    if top:
        groups[high_name] = take(ranked(cands, True, config.strata), top, len(cands), config.max_length)
    if bottom:
        groups[low_name] = take(ranked(cands, False, config.strata), bottom, len(cands), config.max_length)
    if config.match_length != "truncate":
        return groups, {}
    if len({c.index for c in groups[high_name]} & {c.index for c in groups[low_name]}):
        raise ConfigError(f"--match-length truncate: the highest and lowest {top} overlap; ask for fewer")
    groups[high_name], groups[low_name], design = truncation_matched(
        groups[high_name], groups[low_name], config.pairing, config.seed, config.max_length
    )
    return groups, design


def keep_column(
    records: list[dict[str, Any]], chosen: set[int], why: dict[int, str], passed: str | None
) -> list[dict[str, Any]]:
    """Every record with ``keep`` (whether it was chosen) and ``drop_reason`` (why not: its own reason, or
    ``passed``, that it was a candidate the group did not take)."""
    return [
        {
            **r,
            "keep": r["source_index"] in chosen,
            "drop_reason": None if r["source_index"] in chosen else why.get(r["source_index"], passed),
        }
        for r in records
    ]
