"""Store stage: the run folder (manifest and Parquet parts), written atomically, read by DuckDB."""

from gradspec.store.folder import RunFolder
from gradspec.store.query import Run, open_run
from gradspec.store.schema import TABLES

__all__ = ["Run", "RunFolder", "TABLES", "open_run"]
