"""``gradspec filter``: rules a curator can state and defend, and the reason each record was dropped.

A recipe is a list of rules, all of which a kept record satisfies: ``reward > 0``, ``ifd < 1``,
``effective_rank >= p10`` (a value, or ``pNN``, that percentile of the field's defined values in
the file). Every record of the input is written back with all its fields, plus ``keep`` and
``drop_reason``: the first rule it fails, or ``not scored: ...`` when a rule's field is undefined
for it (with the scorer's own reason when the scored file has one), so a record that could not be
scored is never mistaken for one that scored low. The summary says, per rule, how many records it
drops alone and how many it drops after the rules before it.
"""

from __future__ import annotations

import json
import math
import operator
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gradspec.config.filtering import FilterConfig, rules_of
from gradspec.config.yaml_files import read_yaml
from gradspec.data import load_dataset
from gradspec.data.load import UnknownLayout
from gradspec.data.readers import read_rows
from gradspec.data.values import KEEP, finite_number, lookup
from gradspec.errors import ConfigError, OutputError
from gradspec.extras import require
from gradspec.files import WriterLock, check_output_file, check_output_folder, json_text, naming, write_records

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "!=": operator.ne,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
RULE = re.compile(
    r"^\s*([A-Za-z_][\w.\-]*)\s*(>=|<=|!=|==|>|<)\s*(p\d{1,2}(?:\.\d+)?|[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Rule:
    """``field op threshold``; a threshold ``pNN`` is resolved against the file."""

    text: str
    field: str
    op: str
    threshold: str

    @classmethod
    def parse(cls, text: str) -> Rule:
        m = RULE.match(text)
        if m is None:
            raise ConfigError(
                f"rule {text!r}: write FIELD OP VALUE, e.g. 'reward > 0' or 'effective_rank >= p10' "
                f"(OP one of {' '.join(OPERATORS)})"
            )
        return cls(text.strip(), *m.groups())

    def value(self, values: Sequence[float]) -> float:
        """The threshold as a number (a percentile of ``values`` for ``pNN``)."""
        if not self.threshold.startswith("p"):
            number = float(self.threshold)
            if not math.isfinite(number):
                raise ConfigError(f"rule {self.text!r}: {self.threshold[:20]}... is beyond any float; give a number")
            return number
        if not values:
            raise ConfigError(f"rule {self.text!r}: no record has a defined {self.field} to take a percentile of")
        return float(np.percentile(values, float(self.threshold[1:])))


def read_recipe(path: Path) -> tuple[str, ...]:
    """The rules of a recipe file (``rules: [...]``)."""
    raw = read_yaml(path, "--recipe")
    if not isinstance(raw, dict) or "rules" not in raw:
        raise ConfigError(f"--recipe {path}: a YAML mapping with a list under rules:")
    try:
        return rules_of(raw["rules"])
    except ValueError as exc:
        raise ConfigError(f"--recipe {path}: rules {exc}") from exc


DROP_RULE = "drop_rule"
"""The column naming what dropped a record, without its value: the rule's text, or ``not scored: FIELD``
(a category to count and group by; ``drop_reason`` says the value too)."""
VERDICT = (KEEP, "drop_reason", DROP_RULE)


def not_scored(record: Mapping[str, Any], field: str) -> str:
    """Why ``field`` is undefined for ``record``: the scorer's reason when the file says it."""
    errors = record.get("score_errors")
    if isinstance(errors, Mapping) and errors:
        why = errors.get(field) or (
            next(iter(errors.values())) if len(errors) == 1 else "; ".join(map(str, errors.values()))
        )
        return f"not scored: {field} undefined ({why})"
    return f"not scored: {field} undefined"


def apply_rules(
    records: Sequence[Mapping[str, Any]], rules: Sequence[Rule]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every record with ``keep`` and ``drop_reason``, and per rule how many it drops alone and in turn."""
    known = set().union(*(r.keys() for r in records)) if records else set()
    for rule in rules:
        if records and rule.field not in known and all(lookup(r, rule.field) is None for r in records):
            shown = ", ".join(sorted(k for k in known if k not in VERDICT)[:12])
            raise ConfigError(f"rule {rule.text!r}: no record has a field {rule.field!r} (fields: {shown})")
    thresholds = []
    for rule in rules:
        defined = [v for r in records if (v := finite_number(lookup(r, rule.field))) is not None]
        thresholds.append(rule.value(defined))
    # Per rule: records it drops by their value, and records it cannot read (not scored), alone and in turn.
    counts = [
        dict.fromkeys(("drops_alone", "drops_in_turn", "not_scored_alone", "not_scored_in_turn"), 0) for _ in rules
    ]
    out = []
    for record in records:
        reason = category = None
        for rule, threshold, count in zip(rules, thresholds, counts):
            value = finite_number(lookup(record, rule.field))
            failed = not_scored(record, rule.field) if value is None else None
            if failed is None and value is not None and not OPERATORS[rule.op](value, threshold):
                failed = f"{rule.text}: {rule.field} is {value:.4g}" + (
                    f" ({rule.threshold} = {threshold:.4g})" if rule.threshold.startswith("p") else ""
                )
            if failed is not None:
                kind = "drops" if value is not None else "not_scored"
                count[f"{kind}_alone"] += 1
                if reason is None:
                    count[f"{kind}_in_turn"] += 1
                    reason = failed
                    category = rule.text if value is not None else f"not scored: {rule.field}"
        out.append({**record, "keep": reason is None, "drop_reason": reason, DROP_RULE: category})
    summary = [
        {"rule": rule.text, "threshold": threshold, **count}
        for rule, threshold, count in zip(rules, thresholds, counts)
    ]
    return out, summary


BOOKKEEPING = frozenset({"id", "index", "sample_id", "gradspec_sample_id", "source_index", *VERDICT})
"""Numeric fields that identify a record or carry filter's verdict: never exported as a score."""
ODA_VERDICT = "GradspecFilter"
"""The scorer name under which ``--format oda`` writes filter's verdict (score 1 kept, 0 dropped)."""


def oda_rows(records: Sequence[Mapping[str, Any]], ids: Sequence[Any]) -> list[dict[str, Any]]:
    """OpenDataArena's ``pointwise_scores.jsonl`` layout: one ``{"id", "scores": {Scorer: {"score": x}}}``
    per record, ``id`` its place in the input (ODA's own id where the input is an ODA score file). Every
    numeric field is a scorer; a record's ODA ``scores`` (nested, or flat as ODA's selection reads them)
    are kept as they are; filter's verdict is the scorer ``GradspecFilter`` with its ``drop_reason``."""
    out = []
    for i, r in zip(ids, records):
        scores: dict[str, Any] = {}
        nested = r.get("scores")
        for name, v in nested.items() if isinstance(nested, Mapping) else ():
            if isinstance(v, Mapping) and "score" in v:
                scores[str(name)] = dict(v)
            elif finite_number(v) is not None:
                scores[str(name)] = {"score": v}
        for k, v in r.items():
            if k not in BOOKKEEPING and k != "scores" and finite_number(v) is not None:
                scores[k] = {"score": v}
        if KEEP in r:
            scores[ODA_VERDICT] = {"score": int(bool(r[KEEP])), "drop_reason": r.get("drop_reason")}
        out.append({"id": i, "scores": scores})
    return out


def hf_dataset(records: Sequence[Mapping[str, Any]]) -> Any:
    """The records as a Hugging Face ``datasets.Dataset``, their schema kept."""
    datasets = require("datasets", "datasets", "--format hf and --push-to-hub")
    import pyarrow as pa

    rows = [json.loads(json_text(r)) for r in records]  # lone surrogates escaped, as every writer does
    try:
        return datasets.Dataset.from_list(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise OutputError(f"--format hf: these records do not fit one Arrow schema ({exc}); write .jsonl") from exc


def push(table: Any, repo: str) -> None:
    """``table`` to the hub as dataset ``repo``; one line when it cannot be done (no network, no token)."""
    try:
        table.push_to_hub(repo)
    except Exception as exc:  # noqa: BLE001  (offline, refused, no token: every failure is one line)
        raise OutputError(
            f"--push-to-hub {repo}: not pushed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "is the hub reachable, and a token set (HF_TOKEN)? The file is written"
        ) from exc


OWN_ID = "gradspec_sample_id"
"""Where gradspec's id of a record goes when the record has a ``sample_id`` of its own, which is kept."""

HF_FILES = ("state.json", "dataset_info.json")
"""What ``save_to_disk`` writes beside its Arrow files: a folder that holds them is one --overwrite may replace."""


def without_verdict(record: Mapping[str, Any]) -> dict[str, Any]:
    """A kept record as the input had it: ``keep``, ``drop_reason`` and ``drop_rule`` taken off (every one is kept)."""
    return {k: v for k, v in record.items() if k not in VERDICT}


def with_id(value: Mapping[str, Any], sid: str) -> dict[str, Any]:
    """The record with gradspec's ``sample_id``; a record's own, other ``sample_id`` is kept and ours goes
    to ``OWN_ID`` (nothing a user wrote is replaced)."""
    own = value.get("sample_id")
    return {**value, "sample_id": sid} if own is None or own == sid else {**value, OWN_ID: sid}


def check_out(config: FilterConfig) -> None:
    """Refuse an --out that exists (without --overwrite) or that --overwrite must not replace."""
    out = config.out
    if config.format == "hf":
        check_output_folder(out)
        if out.exists() and any(out.iterdir()):
            if not config.overwrite:
                raise OutputError(f"--out {out} exists and is not empty; give --overwrite or another --out")
            if not all((out / f).is_file() for f in HF_FILES):
                raise OutputError(
                    f"--out {out} is not a datasets folder; --overwrite replaces only one (choose another --out)"
                )
    else:
        check_output_file(out)
        if out.exists() and not config.overwrite:
            raise OutputError(f"--out {out} exists; give --overwrite or another --out")


def save_folder(table: Any, out: Path) -> None:
    """``table.save_to_disk`` into a hidden sibling, then moved onto ``out``: a failure (a full disk)
    leaves the old folder or none, never half of one."""
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with naming(out):
            table.save_to_disk(str(tmp))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def filter_records(config: FilterConfig) -> dict[str, Any]:
    """Write the kept file (or folder) and return the summary: counts and what each rule dropped."""
    texts = (*(read_recipe(config.recipe) if config.recipe is not None else ()), *config.where)
    rules = [Rule.parse(t) for t in texts]
    check_out(config)
    config.out.parent.mkdir(parents=True, exist_ok=True)  # the lock lives beside the output
    with WriterLock(
        config.out.with_name(f".{config.out.name}.lock"),
        f"--out {config.out} is being written by another gradspec filter; wait for it or choose another --out",
    ):
        check_out(config)  # again, now that no other filter can be writing it
        return write_filtered(config, rules)


def filter_input(path: Path) -> tuple[list[dict[str, Any]], list[Any], int]:
    """(records, their ids for ODA, unreadable rows): a data set's records with gradspec's sample_id, or a
    table of scores alone (OpenDataArena's ``pointwise_scores.jsonl``: an id and nested scores, no text)
    as it is, keyed by its own ``id``. An unreadable row is kept as its raw text, never lost."""
    try:
        dataset = load_dataset(path)
    except UnknownLayout:  # no conversation in any record: rules read fields, so a score table is enough
        rows = read_rows(path)
        records = [
            (dict(row.value) if isinstance(row.value, Mapping) else {"record": row.value})
            if row.error is None
            else {"record": row.raw_text}
            for row in rows
        ]
        ids = [r.get("id", row.index) for r, row in zip(records, rows)]
        return records, ids, sum(1 for row in rows if row.error is not None)
    values = [row.value if isinstance(row.value, Mapping) else {"record": row.value} for row in dataset.rows]
    records = [
        with_id(v, item.sample_id) if row.error is None else {"record": row.raw_text, "sample_id": item.sample_id}
        for item, row, v in zip(dataset.items, dataset.rows, values)
    ]
    return records, [row.index for row in dataset.rows], sum(1 for row in dataset.rows if row.error is not None)


def write_filtered(config: FilterConfig, rules: Sequence[Rule]) -> dict[str, Any]:
    records, ids, unusable = filter_input(config.data)
    kept, per_rule = apply_rules(records, rules)
    chosen = [i for i, r in enumerate(kept) if r["keep"] or not config.kept_only]
    written = [without_verdict(kept[i]) if config.kept_only else kept[i] for i in chosen]
    if config.format == "hf":
        save_folder(hf_dataset(written), config.out)
    elif config.format == "oda":
        write_records(config.out, oda_rows(written, [ids[i] for i in chosen]))
    else:
        write_records(config.out, written)
    if config.push_to_hub is not None:
        push(hf_dataset(written), config.push_to_hub)
    n_kept = sum(r["keep"] for r in kept)
    unscored = sum(1 for r in kept if (r["drop_reason"] or "").startswith("not scored"))
    return {
        "data": str(config.data),
        "out": str(config.out),
        "format": config.format,
        "records": len(kept),
        "kept": n_kept,
        "dropped": len(kept) - n_kept,
        "written": len(written),
        "not_scored": unscored,
        "unreadable": unusable,
        "own_ids": sum(OWN_ID in r for r in records),
        "rules": per_rule,
    }
