"""What a run folder holds, and how to tell gradspec's files from anything else.

Shared by the writer (``folder.py``), the reader (``query.py``) and ``verify``: the manifest,
the part files of each table (named ``part-rRRR-<time>-<id>.parquet``), the temporary files of
a write in flight, the per-rank lock files, and ``quarantine/`` where damaged parts are moved.
Anything else in the folder is someone else's and is never deleted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from gradspec.errors import DamagedError, OutputError, first_line
from gradspec.store.contract import MANIFEST, TABLES, is_run_manifest
from gradspec.store.schema import SCHEMAS

QUARANTINE = "quarantine"
PART = re.compile(r"^part-r\d{3}-\d{20}-[0-9a-f]{8}\.parquet$")
TEMP = re.compile(r"^\.part-r\d{3}-\d{20}-[0-9a-f]{8}\.parquet\.[0-9a-f]{8}\.tmp$")
LOCK = re.compile(r"^\.lock-r\d{3}$")
MANIFEST_TEMP = re.compile(rf"^\.{re.escape(MANIFEST)}\.[0-9a-f]{{8}}\.tmp$")


_RANK = re.compile(r"^\.?part-r(\d{3})-")


def rank_of(name: str) -> int | None:
    """The rank that wrote a part or temporary part file, from its name."""
    m = _RANK.match(name)
    return int(m.group(1)) if m else None


def lock_name(rank: int) -> str:
    return f".lock-r{rank:03d}"


def read_manifest(path: Path) -> dict[str, Any]:
    """The run's manifest, or a one-line error saying why it is not one gradspec wrote."""
    file = path / MANIFEST
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DamagedError(f"{file}: cannot be read ({exc.strerror})") from exc
    except (ValueError, RecursionError) as exc:
        raise DamagedError(
            f"{file}: not valid JSON ({first_line(exc)}), so this is "
            "not a run gradspec can read; move the folder away or choose another --out"
        ) from exc
    if not is_run_manifest(data):
        raise OutputError(
            f"{file} is not a gradspec run manifest (no kind 'gradspec-run'); gradspec will not write into or "
            "delete this folder: choose another --out"
        )
    wrong = manifest_problem(data)
    if wrong:
        raise DamagedError(f"{file}: damaged: {wrong}; gradspec compute with --overwrite writes the run anew")
    return data


# The manifest fields readers rely on, and the JSON types they must have when present.
_SHAPES: dict[tuple[str, ...], type | tuple[type, ...]] = {
    ("config",): dict,
    ("options",): dict,
    ("model",): dict,
    ("data",): dict,
    ("counts",): dict,
    ("timing",): dict,
    ("modules",): list,
    ("shapes",): dict,
    ("checks",): dict,
    ("run_id",): str,
    ("model", "num_layers"): int,
    ("model", "name"): str,
    ("data", "path"): str,
    ("data", "n_records"): int,
    ("data", "sha256"): str,
}


def manifest_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with the shape of a manifest gradspec wrote (a field of the wrong type), or None."""
    for keys, kind in _SHAPES.items():
        holder: Any = data
        for key in keys[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(holder, dict) or holder.get(keys[-1]) is None:
            continue
        value = holder[keys[-1]]
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"{'.'.join(keys)} is {type(value).__name__} {str(value)[:40]!r}"
    counts = data.get("counts") or {}
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in counts.values()):
        return "counts are not whole numbers"
    if any(not isinstance(m, str) for m in data.get("modules") or ()):
        return "modules are not names"
    return None


def part_files(path: Path, table: str) -> list[Path]:
    """The table's part files, in name order (temporary and foreign files are not parts)."""
    folder = path / table
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if PART.match(p.name))


RUN_ID_KEY = b"gradspec.run_id"
"""Key of the Parquet footer metadata that names the run a part was written for."""

DAMAGED, FORGED, OTHER_RUN = "does not read", "is not a part of this table (other columns)", "belongs to another run"


def part_problem(part: Path, table: str, run_id: str | None) -> str | None:
    """Why a part cannot be read as part of this run (None when it can): its footer does not read
    (a disk that lost its end), its columns are not the table's, or it names another run."""
    try:
        schema = pq.read_schema(part)
    except Exception:  # noqa: BLE001  (pyarrow raises several kinds for a broken file; all mean "damaged")
        return DAMAGED
    expected = SCHEMAS[table]
    if "sample_id" not in schema.names or any(
        f.name not in expected.names or expected.field(f.name).type != f.type for f in schema
    ):  # an older part may lack a later column; none has one of its own or another type
        return FORGED
    owner = (schema.metadata or {}).get(RUN_ID_KEY)
    if run_id is not None and owner is not None and owner.decode("utf-8", "replace") != run_id:
        return OTHER_RUN
    return None


def bad_parts(path: Path, run_id: str | None, tables: Iterable[str] = TABLES) -> dict[str, tuple[str, list[Path]]]:
    """{part name: (why, its files in every table)} of each part with a file that cannot be read as
    this run's (``part_problem``); parts written before runs had ids are this run's.

    One write puts the same part name in each table, so a bad file anywhere makes the whole part
    (those samples) unusable: the samples row says done, its statistics would be missing.
    """
    why: dict[str, str] = {}
    files: dict[str, list[Path]] = {}
    for table in tables:
        for part in part_files(path, table):
            files.setdefault(part.stem, []).append(part)
            problem = part_problem(part, table, run_id)
            if problem is not None and why.get(part.stem) != OTHER_RUN:
                why[part.stem] = problem
    return {name: (why[name], files[name]) for name in sorted(why)}


def run_id_of(manifest: dict[str, Any]) -> str | None:
    value = manifest.get("run_id")
    return value if isinstance(value, str) else None


def foreign_entries(path: Path) -> list[str]:
    """Everything in a run folder that gradspec did not write (relative paths)."""
    out: list[str] = []
    for entry in sorted(path.iterdir()):
        name = entry.name
        if name == MANIFEST or LOCK.match(name) or MANIFEST_TEMP.match(name):
            continue
        if name in TABLES and entry.is_dir() and not entry.is_symlink():
            out += [
                f"{name}/{p.name}" for p in sorted(entry.iterdir()) if not (PART.match(p.name) or TEMP.match(p.name))
            ]
            continue
        if name == QUARANTINE and entry.is_dir() and not entry.is_symlink():
            for table_dir in sorted(entry.iterdir()):
                if table_dir.name in TABLES and table_dir.is_dir():
                    out += [
                        f"{name}/{table_dir.name}/{p.name}"
                        for p in sorted(table_dir.iterdir())
                        if not PART.match(p.name)
                    ]
                else:
                    out.append(f"{name}/{table_dir.name}")
            continue
        out.append(name + ("/" if entry.is_dir() else ""))
    return out


def only_locks(path: Path) -> bool:
    """A folder that holds nothing but lock files (a run that never got past its start)."""
    return all(LOCK.match(p.name) for p in path.iterdir())
