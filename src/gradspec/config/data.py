"""Options of the data stage: which file, which records, which field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gradspec.config.fields import Options
from gradspec.data.vocabulary import parse_field_map


@dataclass(frozen=True)
class DataConfig(Options):
    """Where the records come from."""

    data: Path = field(metadata={"argument": True, "identity": False})  # the file's hash is the identity
    """JSON list, JSONL, Parquet, CSV, or a local Hugging Face datasets folder."""

    field_map: dict[str, str] = field(default_factory=dict, metadata={"parse": parse_field_map})
    """Read other field names as the canonical ones, e.g. output=answer,instruction=question."""

    limit: int | None = field(default=None, metadata={"min": 1, "identity": False})
    """Only the first N records of the file (a later run without it adds the rest)."""
