"""Pools: the data files an experiment draws from, as one JSON list each.

A pool entry names its files, the records a record must match (``where``), how many to skip and
take of each file, and how many to draw; ``pool_entry`` checks it once, ``build_pool`` writes it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gradspec.data import Record, load_dataset
from gradspec.data.values import numeric_value
from gradspec.errors import ConfigError
from gradspec.experiment.entries import PoolEntry, source
from gradspec.files import write_json_atomic


def pool_entry(e: Mapping[str, Any], root: Path) -> PoolEntry:
    """A pool entry of an experiment file, checked: ``where`` maps a field to a value, a list of values or a
    ``{min, max}`` range; counts are whole numbers >= 1."""
    files = e["data"] if isinstance(e["data"], list) else [e["data"]]
    where = e.get("where")
    if where is not None and not isinstance(where, dict):
        raise ConfigError(f"pool '{e['name']}': where maps a field to a value, a list of values or {{min, max}}")
    for key, want in (where or {}).items():
        if isinstance(want, dict) and (
            not want or set(want) - {"min", "max"} or not all(isinstance(v, (int, float)) for v in want.values())
        ):
            raise ConfigError(f"pool '{e['name']}': where {key}: a range is {{min: NUMBER, max: NUMBER}}")
    return PoolEntry(
        e["name"],
        tuple(source(f, root, f"pool '{e['name']}'") for f in files),
        count(e.get("sample")),
        int(e.get("seed", 0)),
        count(e.get("limit")),
        where,
        count(e.get("skip")) or 0,
    )


def count(value: Any) -> int | None:
    """A count of records (None: not given); refuses anything but a whole number >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"expected a count of records >= 1, got {value!r}")
    return value


def build_pool(
    files: list[Path],
    sample: int | None,
    seed: int,
    out: Path,
    limit: int | None = None,
    where: Mapping[str, Any] | None = None,
    skip: int = 0,
) -> None:
    """Several files as one JSON list (the first ``limit`` records of each that match ``where``,
    after the first ``skip`` of them):
    repeats of a conversation kept once, then ``sample`` drawn. ``where`` maps a field to the value
    (or the list of values, or the ``{min, max}`` range) a record must have. Each record says where it came from:
    ``source_file``, and ``source_rank``, its file's place in the list (0, 1, ...), a number
    ``select`` can split by."""
    seen: set[str] = set()
    records: list[dict[str, Any]] = []
    for rank, f in enumerate(files):
        dataset = load_dataset(f, limit=None if where or limit is None else skip + limit)
        taken, passed = 0, 0
        for item, row in dataset.with_rows():
            if not (isinstance(item, Record) and isinstance(row.value, dict) and matches(row.value, where)):
                continue
            if passed < skip:
                passed += 1
                continue
            if limit is not None and taken >= limit:
                break
            taken += 1
            base = item.sample_id.split("-")[0]
            if base not in seen:
                seen.add(base)
                records.append(dict(row.value, source_file=f.name, source_rank=rank))
    if sample is not None and sample < len(records):
        records = random.Random(seed).sample(records, sample)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, records)


def matches(record: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    """Whether ``record`` has every field of ``where`` at its value, one of its values (a list), or
    within a range (``{min: 0, max: 479}``, bounds included; a number written as text counts)."""
    for key, want in (where or {}).items():
        value = record.get(key)
        if isinstance(want, Mapping):
            number = numeric_value(value)
            low, high = want.get("min", -math.inf), want.get("max", math.inf)
            if number is None or not low <= number <= high:
                return False
        elif not (value in want if isinstance(want, list) else value == want):
            return False
    return True
