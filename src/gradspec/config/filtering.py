"""Options of ``gradspec filter``: rules over any field, and where the kept file goes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gradspec.config.fields import Options
from gradspec.errors import ConfigError

OutputFormat = Literal["records", "hf", "oda"]


def rules_of(value: object) -> tuple[str, ...]:
    """Rules as given: one text, or a list of them (repeated --where, a YAML list)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expects rules like 'reward > 0', got {value!r}")


@dataclass(frozen=True)
class FilterConfig(Options):
    """Which records a curator keeps, by rules that are all true of them."""

    data: Path = field(metadata={"argument": True})
    """A scored file (gradspec score) or any file with the fields the rules read."""

    out: Path = field(metadata={"short": "-o"})
    """The file of every record with keep and drop_reason added (.json, .jsonl, .parquet), or with --format hf
    a Hugging Face datasets folder."""

    where: tuple[str, ...] = field(default=(), metadata={"parse": rules_of, "multiple": True})
    """A rule, e.g. 'reward > 0', 'ifd < 1', 'effective_rank >= p10' (pNN: that percentile of the field's
    defined values); give it several times, all must hold. Operators: > >= < <= == !=. A nested field by its
    dotted path: 'scores.DeitaQScorer > 4' (OpenDataArena's {"score": x} is read through)."""

    recipe: Path | None = None
    """A YAML file with a list of rules under rules: (read before any --where)."""

    format: OutputFormat = "records"
    """records: the input's records as a JSON list, JSON lines or Parquet (by the suffix of --out); hf: a
    datasets folder (save_to_disk) with the original schema plus keep and drop_reason; oda: OpenDataArena's
    pointwise_scores.jsonl layout, one {"id", "scores": {"Scorer": {"score": x}}} per line, for every numeric
    field, with the verdict as the scorer GradspecFilter."""

    kept_only: bool = False
    """Write only the kept records, without keep and drop_reason (the file to train on); the summary still counts
    every drop. Without it every record is written back, marked (select leaves the dropped ones out)."""

    push_to_hub: str | None = None
    """Also push the records (with keep and drop_reason) to the Hugging Face hub as this dataset repo
    (owner/name), when a hub is reachable and a token is set (HF_TOKEN or huggingface-cli login)."""

    overwrite: bool = False
    """Replace --out if it exists."""

    def check(self) -> None:
        if not self.where and self.recipe is None:
            raise ConfigError("filter: give --where RULE (one or more) or --recipe FILE")
        if self.push_to_hub is not None and not re.match(r"^[\w.-]+/[\w.-]+$", self.push_to_hub):
            raise ConfigError(f"--push-to-hub {self.push_to_hub!r}: give a dataset repo as owner/name")
