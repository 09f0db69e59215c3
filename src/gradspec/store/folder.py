"""A run folder: manifest, atomic Parquet parts, one writer at a time, resume, repair and the
configuration check.

Every part is written whole under a temporary name, flushed to disk and renamed, so a crash
never leaves half a file. One flush writes the same part name into each table, ``samples``
last: a sample counts as done only once its ``samples`` row exists, and on resume parts of
other tables without a matching ``samples`` part (a crash between the two) are removed. A part
that does not read (a disk that lost its end) is moved to ``quarantine/`` with its siblings,
so its samples are computed again. Part names carry the writer's rank, so several processes
(one per rank) can write one run at once; each rank holds an OS lock on its own lock file, so
a second process for the same folder and rank is refused at once. ``--overwrite`` deletes only
a run gradspec wrote, and within it only gradspec's own files.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gradspec.errors import ConfigError, DamagedError, GradspecError, OutputError
from gradspec.files import WriterLock, atomic_write, check_parent, write_json_atomic
from gradspec.store.contract import MANIFEST, TABLES
from gradspec.store.layout import (
    LOCK,
    OTHER_RUN,
    PART,
    QUARANTINE,
    RUN_ID_KEY,
    TEMP,
    bad_parts,
    foreign_entries,
    lock_name,
    only_locks,
    part_files,
    rank_of,
    read_manifest,
    run_id_of,
)
from gradspec.store.schema import SCHEMAS, WRITE_OPTIONS


def _write_table(table: pa.Table, options: Mapping[str, Any], path: Path) -> None:
    pq.write_table(table, path, **options)


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
    if not (Path(path) / MANIFEST).exists():
        return
    stored = read_manifest(Path(path)).get("config", {})
    stored = {k: v for k, v in stored.items() if k in config}
    diffs = config_differences(stored, json.loads(json.dumps(config)), defaults)
    if diffs:
        raise ConfigError(
            f"{path} holds a run made with other options ({'; '.join(diffs)}); "
            "use --overwrite to replace it or another --out"
        )


def check_out(path: str | Path, overwrite: bool) -> None:
    """Refuse, in one line and before any model loads, an ``--out`` gradspec cannot or must not use."""
    p = Path(path)
    if p.is_symlink() and overwrite:
        raise OutputError(f"--out {p} is a symbolic link; --overwrite only replaces a real folder: give its target")
    if p.exists() and not p.is_dir():
        raise OutputError(f"--out {p} is a file, not a folder; choose another --out")
    check_parent(p)
    if not p.is_dir():
        return
    unwritable = [d for d in (p, *(p / t for t in TABLES)) if d.is_dir() and not os.access(d, os.W_OK | os.X_OK)]
    if unwritable:
        raise OutputError(f"--out {p}: {unwritable[0]} is not writable, so the run cannot go on there")
    if (p / MANIFEST).exists():
        read_manifest(p)  # one gradspec wrote, or a one-line refusal
        if overwrite:
            foreign = foreign_entries(p)
            if foreign:
                shown = ", ".join(foreign[:8]) + (f" and {len(foreign) - 8} more" if len(foreign) > 8 else "")
                raise OutputError(
                    f"--overwrite: {p} holds files gradspec did not write ({shown}); refusing to delete them: "
                    "move them away or choose another --out"
                )
    elif any(p.iterdir()) and not only_locks(p):
        raise OutputError(f"{p} exists and is not a gradspec run; choose another --out (--overwrite never deletes it)")


class RunFolder:
    """Writer side of a run folder."""

    def __init__(self, path: Path, rank: int = 0) -> None:
        self.path = Path(path)
        self.rank = rank
        self._lock: WriterLock | None = None
        self.run_id: str | None = None
        self.quarantined: list[str] = []

    @classmethod
    def claim(cls, path: str | Path, overwrite: bool = False, rank: int = 0) -> RunFolder:
        """Check ``path`` (``check_out``), create it and take this rank's lock; nothing is deleted yet.

        A second process writing the same folder as the same rank is refused here, at once.
        """
        check_out(path, overwrite)
        run = cls(Path(path), rank)
        run.path.mkdir(parents=True, exist_ok=True)
        run._lock = WriterLock(
            run.path / lock_name(rank),
            f"{run.path} is being written by another gradspec process (rank {rank}); wait for it to finish "
            "or choose another --out",
        )
        return run

    def release(self) -> None:
        """Let another process write this folder (the OS also lets go when the process ends)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __del__(self) -> None:
        self.release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def start(
        self, config: Mapping[str, Any], overwrite: bool = False, defaults: Mapping[str, Any] | None = None
    ) -> RunFolder:
        """Replace the run (``overwrite``, rank 0), or resume it when its stored configuration equals
        ``config``; then clean up after a crash and quarantine damaged parts (rank 0).

        Rank 0 gives the run its id; other ranks start only once rank 0 has written it into the
        manifest (``compute`` waits at a barrier), or each would tag its parts with an id of its own."""
        if overwrite and self.rank == 0 and (self.path / MANIFEST).exists():
            check_out(self.path, overwrite=True)  # still only gradspec's files
            self.delete_own()
        if (self.path / MANIFEST).exists():
            check_config(self.path, config, defaults)
        run_id = run_id_of(self.manifest())
        if run_id is None and self.rank != 0:
            raise GradspecError(
                f"{self.path}: rank {self.rank} started before rank 0 wrote the run's id into {MANIFEST}"
            )
        self.run_id = run_id or uuid.uuid4().hex  # a new run, or one written before ids, gets one
        for table in TABLES:
            (self.path / table).mkdir(parents=True, exist_ok=True)
        self.remove_orphans()
        if self.rank == 0:
            self.quarantine_damaged()
        return self

    @classmethod
    def open(
        cls,
        path: str | Path,
        config: Mapping[str, Any],
        overwrite: bool = False,
        rank: int = 0,
        defaults: Mapping[str, Any] | None = None,
    ) -> RunFolder:
        """``claim`` then ``start``: create ``path``, or resume it when its configuration equals ``config``."""
        return cls.claim(path, overwrite, rank).start(config, overwrite, defaults)

    def delete_own(self) -> None:
        """Delete the manifest, the tables and the quarantine: what gradspec wrote (``check_out`` has
        made sure nothing else is there). Lock files stay: ranks hold them."""
        for name in (*TABLES, QUARANTINE):
            if (self.path / name).is_dir():
                shutil.rmtree(self.path / name)
        for entry in self.path.iterdir():
            if entry.is_file() and not LOCK.match(entry.name):
                entry.unlink()

    def quarantine_damaged(self) -> list[str]:
        """Move every part that has a file that does not read or has another table's columns (with
        its siblings in the other tables) to ``quarantine/<table>/``; its samples count as not done
        and are computed again. Parts of another run (copied in) are refused, not moved: they are
        someone's results, and this run's counts must not take them in."""
        bad = bad_parts(self.path, self.run_id)
        foreign = sorted(name for name, (why, _) in bad.items() if why == OTHER_RUN)
        if foreign:
            raise DamagedError(
                f"{self.path} holds {len(foreign)} part(s) of another run ({foreign[0]}, ...); they were copied in: "
                "move them out of the tables before this run goes on"
            )
        for name, (_, files) in bad.items():
            for f in files:
                target = self.path / QUARANTINE / f.parent.name
                target.mkdir(parents=True, exist_ok=True)
                os.replace(f, target / f.name)
            self.quarantined.append(name)
        return self.quarantined

    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.path) if (self.path / MANIFEST).exists() else {}

    def write_manifest(self, data: Mapping[str, Any]) -> None:
        write_json_atomic(self.path / MANIFEST, data)

    def parts(self, table: str) -> list[Path]:
        return part_files(self.path, table)

    def remove_orphans(self) -> None:
        """Delete temp files and parts whose ``samples`` part was never written (a write cut short):
        this rank's, and, on rank 0, those of every other rank that no process is writing now (a
        run resumed with fewer workers than it was killed with)."""
        done = {p.stem for p in self.parts("samples")}
        idle: dict[int, bool] = {self.rank: True}  # rank -> no process writes it now

        def cleared(rank: int | None) -> bool:
            if rank is None or (self.rank != 0 and rank != self.rank):
                return False
            if rank not in idle:
                idle[rank] = not WriterLock.held(self.path / lock_name(rank))
            return idle[rank]

        for table in TABLES:
            for p in (self.path / table).iterdir():
                cut_short = TEMP.match(p.name) or (table != "samples" and PART.match(p.name) and p.stem not in done)
                if cut_short and cleared(rank_of(p.name)):
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
            schema = SCHEMAS[table].with_metadata({RUN_ID_KEY: self.run_id.encode()}) if self.run_id else SCHEMAS[table]
            data = pa.Table.from_pylist(list(rows.get(table, [])), schema=schema)
            options = WRITE_OPTIONS[table]
            atomic_write(self.path / table / f"{name}.parquet", partial(_write_table, data, options))
        return name
