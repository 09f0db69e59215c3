"""Arrow schemas of the run-folder tables: the contract other tools read (DESIGN.md)."""

from __future__ import annotations

import pyarrow as pa

SAMPLES = pa.schema(
    [
        ("sample_id", pa.string()),
        ("index", pa.int64()),
        ("status", pa.string()),  # 'ok' | 'skipped' | 'error'
        ("reason", pa.string()),
        ("n_tokens", pa.int64()),
        ("n_response_tokens", pa.int64()),
        ("loss", pa.float64()),
        ("n_prompt_tokens", pa.int64()),
        ("truncated", pa.bool_()),
    ]
)
LAYER_STATS = pa.schema(
    [
        ("sample_id", pa.string()),
        ("layer", pa.int32()),
        ("module", pa.string()),
        ("nuclear_norm", pa.float64()),
        ("effective_rank", pa.float64()),
        ("frobenius_norm", pa.float64()),
        ("spectral_norm", pa.float64()),
        ("stable_rank", pa.float64()),
    ]
)
SIMILARITY = pa.schema(
    [
        ("sample_id", pa.string()),
        ("kind", pa.string()),  # 'adjacent' | 'same_layer'
        ("module", pa.string()),  # 'q' ... for adjacent; 'q*o', 'k*v' for same_layer
        ("layer", pa.int32()),
        ("cosine", pa.float64()),
    ]
)
SPECTRA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("layer", pa.int32()),
        ("module", pa.string()),
        ("singular_values", pa.list_(pa.float32())),
    ]
)
TABLES: dict[str, pa.Schema] = {
    "samples": SAMPLES,
    "layer_stats": LAYER_STATS,
    "similarity": SIMILARITY,
    "spectra": SPECTRA,
}
