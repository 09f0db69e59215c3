"""Arrow schemas of the run-folder tables, built from the contract's columns, and how parts are written."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from gradspec.store.contract import COLUMNS

_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "list<float32>": pa.list_(pa.float32()),
}
SCHEMAS: dict[str, pa.Schema] = {
    table: pa.schema([(name, _TYPES[kind]) for name, kind in columns]) for table, columns in COLUMNS.items()
}


def _floating(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or (pa.types.is_list(t) and pa.types.is_floating(t.value_type))


def write_options(schema: pa.Schema) -> dict[str, Any]:
    """``pq.write_table`` options for a table's parts: zstd level 9; text dictionary-encoded
    (one ``sample_id`` repeats on every row of its sample); floating columns byte-stream-split,
    so the sign/exponent bytes of similar numbers (a sorted spectrum, the norms of one module)
    compress apart from the mantissa bytes. Lossless: every value reads back bit for bit.

    Level 9 rather than zstd's default makes spectra smaller for a few milliseconds per sample
    on the writer thread (the benchmark's storage case measures it)."""
    floats = [f for f in schema if _floating(f.type)]
    # Encodings are set on Parquet leaf columns: a list's values are "<name>.list.element".
    leaves = [f"{f.name}.list.element" if pa.types.is_list(f.type) else f.name for f in floats]
    return {
        "compression": "zstd",
        "compression_level": 9,
        "use_dictionary": [f.name for f in schema if f not in floats],
        "column_encoding": dict.fromkeys(leaves, "BYTE_STREAM_SPLIT"),
    }


WRITE_OPTIONS: dict[str, dict[str, Any]] = {name: write_options(schema) for name, schema in SCHEMAS.items()}
