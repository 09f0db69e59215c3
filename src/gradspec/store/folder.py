"""A run folder: manifest, atomic Parquet parts, resume and the configuration check.

Every part is written whole under a temporary name, flushed to disk and renamed, so a crash
never leaves half a file. One flush writes the same part name into each table, ``samples``
last: a sample counts as done only once its ``samples`` row exists, and on resume parts of
other tables without a matching ``samples`` part (a crash between the two) are removed.
Part names carry the writer's rank, so several processes can write one run at once.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gradspec.errors import ConfigError
from gradspec.files import atomic_write, write_json_atomic
from gradspec.store.contract import MANIFEST
from gradspec.store.schema import TABLES, WRITE_OPTIONS


def config_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
) -> list[str]:
    """One line per option whose value differs. An option a run does not record (it was added to
    gradspec later) counts as having its default, so older runs keep resuming."""
    defaults = defaults or {}
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        before = old.get(k, defaults.get(k))
        if before != new.get(k):
            out.append(f"{k}: run has {before!r}, this command has {new.get(k)!r}")
    return out


def check_config(path: str | Path, config: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> None:
    """Refuse (``ConfigError``) when ``path`` holds a run whose stored options differ from ``config``.

    Only the keys of ``config`` are compared, so a caller can check what it knows before the
    model loads and the rest after.
    """
    manifest = Path(path) / MANIFEST
    if not manifest.exists():
        return
    stored = json.loads(manifest.read_text()).get("config", {})
    stored = {k: v for k, v in stored.items() if k in config}
    diffs = config_differences(stored, json.loads(json.dumps(config)), defaults)
    if diffs:
        raise ConfigError(
            f"{path} holds a run made with other options ({'; '.join(diffs)}); "
            "use --overwrite to replace it or another --out"
        )


class RunFolder:
    """Writer side of a run folder."""

    def __init__(self, path: Path, rank: int = 0) -> None:
        self.path = Path(path)
        self.rank = rank

    @classmethod
    def open(
        cls,
        path: str | Path,
        config: Mapping[str, Any],
        overwrite: bool = False,
        rank: int = 0,
        defaults: Mapping[str, Any] | None = None,
    ) -> RunFolder:
        """Create ``path``, or resume it when its stored configuration equals ``config``."""
        run = cls(Path(path), rank)
        manifest = run.path / MANIFEST
        if overwrite and rank == 0 and manifest.exists():
            shutil.rmtree(run.path)  # only ever a gradspec run: never an arbitrary folder
        if manifest.exists():
            check_config(run.path, config, defaults)
        elif run.path.exists() and any(run.path.iterdir()):
            raise ConfigError(f"{run.path} exists and is not a gradspec run; choose another --out or use --overwrite")
        for table in TABLES:
            (run.path / table).mkdir(parents=True, exist_ok=True)
        run.remove_orphans()
        return run

    def manifest(self) -> dict[str, Any]:
        p = self.path / MANIFEST
        return json.loads(p.read_text()) if p.exists() else {}

    def write_manifest(self, data: Mapping[str, Any]) -> None:
        write_json_atomic(self.path / MANIFEST, data)

    def parts(self, table: str) -> list[Path]:
        return sorted((self.path / table).glob("*.parquet"))

    def remove_orphans(self) -> None:
        """Delete this rank's temp files and parts whose ``samples`` part was never written."""
        done = {p.stem for p in self.parts("samples")}
        prefix = f"part-r{self.rank:03d}-"
        for table in TABLES:
            for p in (self.path / table).iterdir():
                if p.name.endswith(".tmp") and prefix in p.name:
                    p.unlink(missing_ok=True)
                elif table != "samples" and p.name.startswith(prefix) and p.stem not in done:
                    p.unlink(missing_ok=True)

    def done_ids(self) -> set[str]:
        """``sample_id`` of every sample that already has its row."""
        ids: set[str] = set()
        for p in self.parts("samples"):
            ids.update(pq.read_table(p, columns=["sample_id"]).column(0).to_pylist())
        return ids

    def write_part(self, rows: Mapping[str, list[dict[str, Any]]]) -> str:
        """Write one part per table (``samples`` last) and return the part's name."""
        name = f"part-r{self.rank:03d}-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        order = [t for t in TABLES if t != "samples" and rows.get(t)] + ["samples"]
        for table in order:
            data = pa.Table.from_pylist(list(rows.get(table, [])), schema=TABLES[table])
            options = WRITE_OPTIONS[table]
            atomic_write(self.path / table / f"{name}.parquet", lambda p, d=data, o=options: pq.write_table(d, p, **o))
        return name
