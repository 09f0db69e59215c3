"""Whole-file writes: written under a temporary name, fsynced and renamed, so a crash leaves
either the old file or the new one, never half of one. Used by run folders and record files."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gradspec.config.data import check_record_path
from gradspec.errors import ConfigError


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp)`` and move ``tmp`` onto ``path`` once it is on disk."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_parent(p: Path, option: str = "--out") -> None:
    """Refuse a path whose nearest existing ancestor is a file or is not writable: nothing could be made there."""
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {p}: {parent} is a file, so nothing can be made under it")
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {p}: {parent} is not writable")


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output file that cannot be written (a folder, a file as parent)."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{option} {p} is a folder; give a file")
    check_parent(p, option)
    return p


def write_json_atomic(path: Path, data: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"))


def write_records(path: str | Path, records: Sequence[Mapping[str, Any]]) -> Path:
    """Write records as a JSON list, JSON lines or Parquet, chosen by the file's suffix."""
    p = check_record_path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        try:
            table = pa.Table.from_pylist([dict(r) for r in records])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ConfigError(f"{p}: these records do not fit one Parquet schema ({exc}); write .jsonl") from exc
        atomic_write(p, lambda t: pq.write_table(table, t))
    elif suffix == ".jsonl":
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        atomic_write(p, lambda t: t.write_text(lines, encoding="utf-8"))
    else:
        write_json_atomic(p, list(records))
    return p
