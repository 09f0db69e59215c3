"""Read a run folder in place: DuckDB relations and pandas frames over its Parquet parts."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from gradspec.errors import GradspecError
from gradspec.store.folder import MANIFEST
from gradspec.store.schema import TABLES


class Run:
    """A finished or running run folder, opened for reading."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / MANIFEST).exists():
            raise GradspecError(f"{self.path}: not a gradspec run (no {MANIFEST})")
        self.con = duckdb.connect()

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / MANIFEST).read_text())

    def relation(self, table: str) -> duckdb.DuckDBPyRelation:
        """A DuckDB relation over every part of ``table`` (empty when it has none)."""
        if table not in TABLES:
            raise GradspecError(f"unknown table '{table}'; tables are {', '.join(TABLES)}")
        files = sorted(str(p) for p in (self.path / table).glob("*.parquet"))
        if not files:
            return self.con.from_arrow(TABLES[table].empty_table())
        return self.con.read_parquet(files)

    def df(self, table: str) -> pd.DataFrame:
        """``table`` as a pandas frame."""
        return self.relation(table).df()

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run SQL in which each table name (samples, layer_stats, ...) is a view of this run."""
        for table in TABLES:
            self.con.register(table, self.relation(table))
        return self.con.sql(query)

    def failure_summary(self, top: int = 5) -> list[tuple[str, int, str]]:
        """(status, count, reason) of skipped and errored samples, grouped by the reason with its
        numbers written as N (record indices, token counts), most common first."""
        rows = self.sql("select status, reason from samples where status <> 'ok'").fetchall()
        counts = Counter((status, re.sub(r"\d+", "N", reason or "no reason given")) for status, reason in rows)
        return [(status, n, reason) for (status, reason), n in counts.most_common(top)]

    def scalar(self, query: str) -> Any:
        """The single value a query returns."""
        return self.sql(query).fetchall()[0][0]


def open_run(path: str | Path) -> Run:
    return Run(path)
