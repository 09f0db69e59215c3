"""InsTag counts and difficulty levels of records, from a judge, through the reply cache.

Every distinct prompt is asked at most once: replies already cached are reused, repeats in one
file share one question, and with ``reuse_raw`` a record's stored reply (``raw_instag`` /
``raw_diff``) is re-parsed instead of asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gradspec.data import Record
from gradspec.score.judge.base import Judge
from gradspec.score.judge.cache import ReplyCache, reply_key
from gradspec.score.judge.parse import ParseError, capped, parse_difficulty, parse_instag
from gradspec.score.judge.prompts import render
from gradspec.score.outcome import Scored, failed

RAW_FIELD = {"instag": "raw_instag", "difficulty": "raw_diff"}
FIELDS = {"instag": ("instag", "tags", "raw_instag"), "difficulty": ("difficulty", "raw_diff")}


def read_reply(kind: str, reply: str, index: int) -> Scored:
    """A reply turned into the record's fields; unparsable replies keep their text."""
    raw = RAW_FIELD[kind]
    try:
        if kind == "instag":
            tags = parse_instag(reply)
            flags = () if tags.how == "json" else (f"instag_read_by_{tags.how}",)
            return Scored({"instag": tags.count, "tags": list(tags.tags), raw: reply}, flags=flags)
        level = parse_difficulty(reply)
        flags = ("difficulty_labelled",) if level.how == "labelled" else ()
        return Scored({"difficulty": level.value, raw: reply}, flags=flags)
    except ParseError as exc:
        kept: dict[str, Any] = {raw: reply}  # the reply that could not be read stays in the record
        return failed(FIELDS[kind], f"record {index}: {kind} reply: {exc}", **kept)


def judged_scores(
    kind: str,
    records: Sequence[Record],
    raw_values: Mapping[int, Any],
    judge: Judge | None,
    template: str,
    cache: ReplyCache | None,
    reuse_raw: bool = False,
    progress: bool = True,
) -> dict[int, Scored]:
    """``kind`` is ``instag`` or ``difficulty``; ``raw_values`` maps record index to the record as read."""
    out: dict[int, Scored] = {}
    wanted: dict[str, tuple[str, list[int]]] = {}  # key -> (prompt, record indices)
    for item in records:
        stored = raw_values.get(item.index, {}).get(RAW_FIELD[kind]) if reuse_raw else None
        if isinstance(stored, str):
            out[item.index] = read_reply(kind, stored, item.index)
            continue
        if judge is None:
            out[item.index] = failed(FIELDS[kind], f"record {item.index}: no {RAW_FIELD[kind]} to reuse and no --judge")
            continue
        prompt = render(template, item)
        key = reply_key(judge.id, judge.settings, prompt)
        wanted.setdefault(key, (prompt, []))[1].append(item.index)
    if not wanted:
        return out
    assert judge is not None and cache is not None
    replies = cache.get_many(wanted)
    missing = [k for k in wanted if k not in replies]
    errors: dict[str, str] = {}

    def on_reply(position: int, reply: str | None, error: str | None) -> None:
        key = missing[position]
        if reply is None:
            errors[key] = error or "no reply"
        else:
            replies[key] = capped(reply)
            cache.put(key, judge.id, replies[key])

    if missing:
        judge.ask([wanted[k][0] for k in missing], on_reply, progress)
    for key, (_, indices) in wanted.items():
        for index in indices:
            if key in replies:
                out[index] = read_reply(kind, replies[key], index)
            else:
                reason = f"record {index}: judge {judge.id} failed: {errors.get(key)}"
                out[index] = failed(FIELDS[kind], reason, transient=True)
    return out
