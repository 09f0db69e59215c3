"""Options of the store stage: the run folder and how often it is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gradspec.config.fields import Options


@dataclass(frozen=True)
class RunConfig(Options):
    """The run folder."""

    out: Path = field(metadata={"short": "-o", "identity": False})
    """Run folder to create, or to resume when it holds a run made with the same options."""

    overwrite: bool = field(default=False, metadata={"identity": False})
    """Replace a run made with other options (only ever a folder gradspec wrote)."""

    flush_every: int = field(default=32, metadata={"min": 1, "identity": False})
    """Samples per Parquet part: at most this much work is redone after a crash."""
