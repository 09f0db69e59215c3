"""Store stage: the run folder (manifest and Parquet parts), written atomically, read by DuckDB.

Pure I/O: nothing here imports torch. ``contract`` holds the names other tools read; the
names below are imported on first use, so the contract alone stays light.
"""

from gradspec.lazy import lazy_exports

__all__ = ["SCHEMAS", "Run", "RunFolder", "open_run"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Run": "gradspec.store.query",
        "open_run": "gradspec.store.query",
        "RunFolder": "gradspec.store.folder",
        "SCHEMAS": "gradspec.store.schema",
    },
)
