"""Read a data file into raw rows, whatever its container format.

Supported: JSON list, JSONL, Parquet, CSV, and a local Hugging Face ``datasets`` folder
(``save_to_disk`` output, read through pyarrow so ``datasets`` is not required) or a folder
of such files. A broken JSONL line becomes one error row (the rest is kept); a file that
cannot be read at all raises ``DataFileError`` with a one-line reason.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gradspec.errors import DataFileError

SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet", ".csv", ".arrow")
DATASETS_METADATA = ("dataset_info.json", "state.json", "dataset_dict.json")  # save_to_disk's, not data


@dataclass(frozen=True)
class RawRow:
    """One record as read: its position, and either the parsed value or why it failed to parse."""

    index: int
    value: Any = None
    error: str | None = None
    raw_text: str | None = None


def read_rows(path: str | Path) -> list[RawRow]:
    """Read every record of ``path`` in file order."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(f"{p}: no such file or folder")
    if p.is_dir():
        return _read_folder(p)
    suffix = p.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(p)
        if suffix == ".json":
            return _read_json(p)
        if suffix == ".parquet":
            return _rows(pq.read_table(p).to_pylist())
        if suffix == ".csv":
            return _read_csv(p)
        if suffix == ".arrow":
            return _rows(_read_arrow(p).to_pylist())
    except DataFileError:
        raise
    except (OSError, pa.ArrowException, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"{p}: cannot be read as {suffix[1:]} ({_first_line(exc)})") from exc
    raise DataFileError(f"{p}: unknown file type '{suffix}'; use one of {', '.join(SUFFIXES)} or a datasets folder")


def _rows(values: list[Any]) -> list[RawRow]:
    return [RawRow(index=i, value=v) for i, v in enumerate(values)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_text(p: Path) -> str:
    data = p.read_bytes()
    if b"\x00" in data[:4096]:
        raise DataFileError(f"{p}: looks like a binary file, not text JSON")
    return data.decode("utf-8-sig")


def _read_json(p: Path) -> list[RawRow]:
    text = _read_text(p)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file holding JSON lines is common enough to accept.
        if exc.msg == "Extra data":
            return _read_jsonl(p)
        raise DataFileError(f"{p}:{exc.lineno}: invalid JSON ({exc.msg}); the file must hold one JSON list") from exc
    if isinstance(value, dict):
        # {"data": [...]} and similar single-key wrappers.
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1:
            value = lists[0]
        else:
            return _rows([value])
    if not isinstance(value, list):
        raise DataFileError(f"{p}: expected a JSON list of records, found {type(value).__name__}")
    return _rows(value)


def _read_jsonl(p: Path) -> list[RawRow]:
    rows: list[RawRow] = []
    for lineno, line in enumerate(_read_text(p).splitlines(), start=1):
        if not line.strip():
            continue  # blank lines are not records
        try:
            rows.append(RawRow(index=len(rows), value=json.loads(line)))
        except json.JSONDecodeError as exc:
            rows.append(RawRow(index=len(rows), error=f"{p.name}:{lineno}: invalid JSON ({exc.msg})", raw_text=line))
    return rows


def _read_csv(p: Path) -> list[RawRow]:
    with p.open(newline="", encoding="utf-8-sig") as f:
        return _rows(list(csv.DictReader(f)))


def _read_arrow(p: Path) -> pa.Table:
    # datasets.save_to_disk writes the IPC stream format; plain Arrow files use the file format.
    with p.open("rb") as f:
        try:
            return pa.ipc.open_stream(f).read_all()
        except pa.ArrowInvalid:
            f.seek(0)
            return pa.ipc.open_file(f).read_all()


def _read_folder(p: Path) -> list[RawRow]:
    """A ``save_to_disk`` folder (or DatasetDict, taking ``train``) or a folder of data files."""
    if (p / "dataset_dict.json").exists():
        splits = json.loads((p / "dataset_dict.json").read_text()).get("splits", [])
        if not splits:
            raise DataFileError(f"{p}: dataset_dict.json lists no splits")
        return _read_folder(p / ("train" if "train" in splits else splits[0]))
    files = sorted(
        f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES and f.name not in DATASETS_METADATA
    )
    if not files:
        raise DataFileError(f"{p}: folder holds no data files ({', '.join(SUFFIXES)})")
    values: list[Any] = []
    for f in files:
        for row in read_rows(f):
            values.append(row.value if row.error is None else row)
    return [
        RawRow(index=i, error=v.error, raw_text=v.raw_text) if isinstance(v, RawRow) else RawRow(index=i, value=v)
        for i, v in enumerate(values)
    ]
