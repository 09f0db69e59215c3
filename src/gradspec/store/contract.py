"""The run-folder contract: the names other tools read (DESIGN.md), in plain Python.

Table and column names, statuses, module and metric names, the manifest's file name and
format marker. Nothing here imports torch, transformers or pyarrow: configs, analysis,
reports and other programs use these names without loading a model (``schema.py`` turns the
columns into Arrow schemas).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

Module = Literal["q", "k", "v", "o", "gate", "up", "down"]
MODULES: tuple[str, ...] = get_args(Module)
"""Canonical projection names, in the order figures and tables list them."""

Metric = Literal["nuclear_norm", "effective_rank", "frobenius_norm", "spectral_norm", "stable_rank"]
METRICS: tuple[str, ...] = get_args(Metric)
"""Columns of ``layer_stats`` computed from each gradient's singular values."""

Status = Literal["ok", "skipped", "error"]
STATUSES: tuple[str, ...] = get_args(Status)

SimilarityKind = Literal["adjacent", "distant", "same_layer", "probe"]
SAME_LAYER_PAIRS: tuple[tuple[str, str], ...] = (("q", "o"), ("k", "v"))
"""Same-layer cosines; stored with module ``q*o`` and ``k*v``."""

MANIFEST = "run.json"
RUN_KIND = "gradspec-run"
"""The manifest's ``kind``: what marks a folder as a run gradspec wrote."""
RUN_FORMAT = 2
"""Version of the manifest's layout (1: before ``kind`` and ``options`` existed)."""

# Column name and Arrow type name, in file order.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "samples": (
        ("sample_id", "string"),
        ("index", "int64"),
        ("status", "string"),  # 'ok' | 'skipped' | 'error'
        ("reason", "string"),
        ("n_tokens", "int64"),
        ("n_response_tokens", "int64"),
        ("loss", "float64"),
        ("n_prompt_tokens", "int64"),
        ("truncated", "bool"),
        ("n_positions", "int64"),  # positions carrying gradient (prompt ones too): the rank bound
    ),
    "layer_stats": (
        ("sample_id", "string"),
        ("layer", "int32"),
        ("module", "string"),
        *((m, "float64") for m in METRICS),
    ),
    "similarity": (
        ("sample_id", "string"),
        ("kind", "string"),  # 'adjacent' | 'distant' | 'same_layer' | 'probe'
        ("module", "string"),  # 'q' ... for adjacent, distant, probe; 'q*o', 'k*v' for same_layer
        ("layer", "int32"),
        ("cosine", "float64"),
    ),
    "step_stats": (  # with compute --steps: one row per step, layer and module
        ("sample_id", "string"),
        ("step", "int32"),
        ("token_start", "int64"),  # [start, end) in the sample's tokens
        ("token_end", "int64"),
        ("char_start", "int64"),  # [start, end) in the response's text
        ("char_end", "int64"),
        ("loss", "float64"),  # the step's share of the sample's loss: its tokens' loss over all response tokens
        ("layer", "int32"),
        ("module", "string"),
        *((m, "float64") for m in METRICS),
        ("sum_residual", "float64"),  # |G - sum of the steps' G| / |G| of the sample at this layer and module
    ),
    "spectra": (
        ("sample_id", "string"),
        ("layer", "int32"),
        ("module", "string"),
        ("singular_values", "list<float32>"),
    ),
}
TABLES: tuple[str, ...] = tuple(COLUMNS)


def is_run_manifest(manifest: Any) -> bool:
    """Whether a parsed ``run.json`` is one gradspec wrote (this format, or the first one)."""
    if not isinstance(manifest, dict):
        return False
    if manifest.get("kind") == RUN_KIND:
        return True
    # Format 1 had no kind; it always held these keys.
    return manifest.get("format") == 1 and {"gradspec_version", "config", "counts"} <= set(manifest)
