"""Load a data file into ``Record``/``BadRecord`` items: the data stage's public entry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gradspec.data.formats import RecordProblem, apply_field_map, has_layout, to_turns
from gradspec.data.readers import MAX_DEPTH, RawRow, depth, is_hub_id, read_rows
from gradspec.data.records import BadRecord, Record, SampleIds, conversation_key
from gradspec.errors import DataFileError
from gradspec.inputs import check_input


@dataclass(frozen=True)
class Dataset:
    """Every record of one file, in file order, plus the file's identity for the manifest."""

    path: Path
    sha256: str
    items: list[Record | BadRecord]
    rows: list[RawRow] = field(default_factory=list)  # as read, for stages that write records back

    def with_rows(self) -> Iterator[tuple[Record | BadRecord, RawRow]]:
        """Each item with the row it was read from (``load_dataset`` makes one item per row, in order)."""
        return zip(self.items, self.rows, strict=True)


def file_sha256(path: Path) -> str:
    """Hash of a file, or of a folder's files (names and contents, sorted); a pipe or a device is
    refused in one line (its read would never end)."""
    check_input(path, "input")
    h = hashlib.sha256()
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def rows_sha256(rows: list[RawRow]) -> str:
    """Hash of rows that came from no file (a hub dataset): their values, in order."""
    h = hashlib.sha256()
    for row in rows:
        h.update(
            json.dumps(row.value, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass")
        )
    return h.hexdigest()


WINDOW_FIELD = "response_window"
"""A record's own response window (``select --match-length truncate`` writes it)."""
LEGACY_WINDOW = ("response_tokens_untruncated", "response_tokens")
"""Older truncation-matched files: the window in ``response_tokens``, marked by the length before the cut."""


def window_of(rec: Mapping[str, object]) -> tuple[int | None, str | None]:
    """A record's own response window (a whole number >= 1), and when it has the field but no usable
    value, what is wrong with it."""
    field = WINDOW_FIELD if WINDOW_FIELD in rec else LEGACY_WINDOW[1] if LEGACY_WINDOW[0] in rec else None
    if field is None:
        return None, None
    value = rec[field]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value, None
    return None, f"its {field} is {value!r}, not a number of tokens >= 1"


class UnknownLayout(DataFileError):
    """No record of a file has the fields of a conversation: a table of scores alone, or a file whose
    field names need --field-map."""


def load_dataset(path: str | Path, field_map: Mapping[str, str] | None = None, limit: int | None = None) -> Dataset:
    """Read ``path`` and normalise every record; ``limit`` keeps the first N records."""
    p = Path(path)
    rows = read_rows(p)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise DataFileError(f"{p}: holds no records")
    ids = SampleIds()
    items: list[Record | BadRecord] = []
    seen_fields: set[str] = set()
    recognised = 0
    for row in rows:
        if row.error is not None:
            items.append(BadRecord(row.index, ids(row.raw_text), row.error))
            continue
        where = f"{p.name}: record {row.index}"
        if depth(row.value) > MAX_DEPTH:
            reason = f"{where}: nested deeper than {MAX_DEPTH} levels"
            items.append(BadRecord(row.index, ids(["nested too deeply", row.index]), reason))
            continue
        if not isinstance(row.value, Mapping):
            reason = f"{where}: is {type(row.value).__name__}, not an object"
            items.append(BadRecord(row.index, ids(row.value), reason))
            continue
        seen_fields.update(map(str, row.value))
        rec = apply_field_map(row.value, field_map or {})
        if has_layout(rec):
            recognised += 1
        try:
            context, response = to_turns(rec)
        except RecordProblem as exc:
            items.append(BadRecord(row.index, ids(row.value), f"{where}: {exc}"))
            continue
        sid = ids(conversation_key(context, response), row.value.get("sample_id"))
        items.append(Record(row.index, sid, context, response, *window_of(rec)))
    if recognised == 0 and seen_fields:
        raise UnknownLayout(
            f"{p}: no record has known fields; found {sorted(seen_fields)[:30]}; expected "
            "messages, conversations, instruction+output or prompt+response; "
            "map yours with --field-map output=FIELD,instruction=FIELD"
        )
    return Dataset(p, rows_sha256(rows) if is_hub_id(path) else file_sha256(p), items, rows)
