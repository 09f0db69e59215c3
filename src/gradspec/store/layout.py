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

from gradspec.errors import ConfigError, first_line
from gradspec.store.contract import MANIFEST, TABLES, is_run_manifest

QUARANTINE = "quarantine"
PART = re.compile(r"^part-r\d{3}-\d{20}-[0-9a-f]{8}\.parquet$")
TEMP = re.compile(r"^\.part-r\d{3}-\d{20}-[0-9a-f]{8}\.parquet\.[0-9a-f]{8}\.tmp$")
LOCK = re.compile(r"^\.lock-r\d{3}$")
MANIFEST_TEMP = re.compile(rf"^\.{re.escape(MANIFEST)}\.[0-9a-f]{{8}}\.tmp$")


def lock_name(rank: int) -> str:
    return f".lock-r{rank:03d}"


def read_manifest(path: Path) -> dict[str, Any]:
    """The run's manifest, or a one-line ``ConfigError`` saying why it is not one gradspec wrote."""
    file = path / MANIFEST
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot be read ({exc.strerror})") from exc
    except (ValueError, RecursionError) as exc:
        raise ConfigError(
            f"{file}: not valid JSON ({first_line(exc)}), so this is "
            "not a run gradspec can read; move the folder away or choose another --out"
        ) from exc
    if not is_run_manifest(data):
        raise ConfigError(
            f"{file} is not a gradspec run manifest (no kind 'gradspec-run'); gradspec will not write into or "
            "delete this folder: choose another --out"
        )
    return data


def part_files(path: Path, table: str) -> list[Path]:
    """The table's part files, in name order (temporary and foreign files are not parts)."""
    folder = path / table
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if PART.match(p.name))


def readable(part: Path) -> bool:
    """Whether a part's Parquet footer reads (a truncated or overwritten file's does not)."""
    try:
        pq.read_metadata(part)
    except Exception:  # noqa: BLE001  (pyarrow raises several kinds for a broken file; all mean "damaged")
        return False
    return True


def damaged_names(path: Path, tables: Iterable[str] = TABLES) -> dict[str, list[Path]]:
    """{part name: its files in every table} of each part that has a file that does not read.

    One write puts the same part name in each table, so a damaged file anywhere makes the whole
    part (those samples) unusable: the samples row says done, its statistics would be missing.
    """
    bad: set[str] = set()
    files: dict[str, list[Path]] = {}
    for table in tables:
        for part in part_files(path, table):
            files.setdefault(part.stem, []).append(part)
            if not readable(part):
                bad.add(part.stem)
    return {name: files[name] for name in sorted(bad)}


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


def _others(folder: Path, ours: tuple[re.Pattern[str], ...]) -> list[str]:
    return [p.name for p in sorted(folder.iterdir()) if not any(o.match(p.name) for o in ours)]


def only_locks(path: Path) -> bool:
    """A folder that holds nothing but lock files (a run that never got past its start)."""
    return all(LOCK.match(p.name) for p in path.iterdir())
