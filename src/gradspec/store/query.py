"""Read a run folder in place: DuckDB relations and pandas frames over its Parquet parts.

Only gradspec's part files are read; a part that does not read, has another table's columns
or names another run (with its siblings in the other tables: the same samples) is left out
and listed in ``skipped_parts``, so a damaged run still shows what it holds. ``gradspec
compute`` on the run moves damaged parts to ``quarantine/`` and computes their samples again.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from gradspec.errors import GradspecError, grouped
from gradspec.store.contract import MANIFEST, STATUSES
from gradspec.store.layout import OTHER_RUN, QUARANTINE, bad_parts, part_files, read_manifest, run_id_of
from gradspec.store.schema import SCHEMAS

if TYPE_CHECKING:  # pandas loads only when a frame is asked for: `gradspec show` prints without it
    import pandas as pd


class Run:
    """A finished or running run folder, opened for reading."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / MANIFEST).exists():
            raise GradspecError(f"{self.path}: not a gradspec run (no {MANIFEST})")
        manifest = read_manifest(self.path)  # a one-line error for a damaged or foreign manifest
        self.bad_parts = bad_parts(self.path, run_id_of(manifest))
        self.skipped_parts = sorted(self.bad_parts)
        self.con = duckdb.connect()

    @property
    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.path)

    def files(self, table: str) -> list[Path]:
        """The part files of ``table`` that are read: bad parts left out, and parts whose ``samples``
        part was never written (a write cut short, or one in flight), whose samples are not done."""
        skipped = set(self.skipped_parts)
        done = None if table == "samples" else {p.stem for p in part_files(self.path, "samples")}
        return [p for p in part_files(self.path, table) if p.stem not in skipped and (done is None or p.stem in done)]

    def relation(self, table: str) -> duckdb.DuckDBPyRelation:
        """A DuckDB relation over every part of ``table`` (empty when it has none)."""
        if table not in SCHEMAS:
            raise GradspecError(f"unknown table '{table}'; tables are {', '.join(SCHEMAS)}")
        files = [str(p) for p in self.files(table)]
        if not files:
            return self.con.from_arrow(SCHEMAS[table].empty_table())
        return self.con.read_parquet(files, union_by_name=True)  # older parts may lack a later column

    def df(self, table: str) -> pd.DataFrame:
        """``table`` as a pandas frame."""
        return self.relation(table).df()

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run SQL in which each table name (samples, layer_stats, ...) is a view of this run.

        Only the tables the query names are registered: an empty table is an Arrow scan, which
        makes DuckDB load pandas, and `gradspec show` should start without it."""
        for table in SCHEMAS:
            if re.search(rf"\b{table}\b", query):
                self.con.register(table, self.relation(table))
        return self.con.sql(query)

    def read_warnings(self) -> list[str]:
        """What a reader of this run should know it is not seeing: damaged and quarantined parts."""
        out = []
        damaged = [name for name, (why, _) in self.bad_parts.items() if why != OTHER_RUN]
        foreign = [name for name, (why, _) in self.bad_parts.items() if why == OTHER_RUN]
        if damaged:
            out.append(
                f"{len(damaged)} damaged part(s) left out ({', '.join(damaged[:3])}); "
                "gradspec compute on this run moves them to quarantine/ and computes their samples again"
            )
        if foreign:
            out.append(
                f"{len(foreign)} part(s) of another run left out ({', '.join(foreign[:3])}): copied in? move them away"
            )
        quarantined = sorted({p.stem for p in (self.path / QUARANTINE).rglob("*.parquet")})
        if quarantined:
            out.append(f"{len(quarantined)} damaged part(s) kept in quarantine/ (not read; their samples were redone)")
        return out

    def failure_summary(self, top: int = 5) -> list[tuple[str, int, str]]:
        """(status, count, reason) of skipped and errored samples, by kind of reason (``grouped``: the
        first of each kind shown with its real record, and how many more are like it), commonest first."""
        rows = self.sql("select status, reason from samples where status <> 'ok' order by index").fetchall()
        out = [
            (status, n, reason) for status in STATUSES[1:] for n, reason in grouped(r for s, r in rows if s == status)
        ]
        return sorted(out, key=lambda t: -t[1])[:top]

    def counts(self) -> dict[str, int]:
        """Samples per status in the folder (every status, 0 where none), and their total."""
        found = dict(self.sql("select status, count(*) from samples group by status").fetchall())
        counts = {s: int(found.get(s, 0)) for s in STATUSES}
        return counts | {"total": int(sum(found.values()))}

    def scalar(self, query: str) -> Any:
        """The single value a query returns."""
        return self.sql(query).fetchall()[0][0]


def open_run(path: str | Path) -> Run:
    return Run(path)
